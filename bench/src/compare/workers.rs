//! The two workers of a comparison: started on each build's libraries, checked to run the
//! build they should, and driven through the same requests, interleaved.

use llamacpp_bench_core::live::Correctness;
use llamacpp_bench_core::params::TestInstance;
use llamacpp_bench_core::protocol::{GraphCounts, LoadedModel, RpcDevice};

use crate::Result;
use crate::runner::TokenRng;
use crate::worker::Worker;

/// The two builds' library directories: `[(upstream, dir), (patched, dir)]`.
pub fn build_dirs() -> Result<[(String, String); 2]> {
    let info = llamacpp_sys::build_info::VARIANT;
    let other = llamacpp_sys::build_info::OTHER_LIB_DIR
        .ok_or("this llama-bench was built without llamacpp-sys's `side-by-side` feature: only one build is available")?;
    let linked = llamacpp_sys::build_info::LIB_DIR.to_string();
    Ok(match info {
        "upstream" => [
            ("upstream".into(), linked),
            ("patched".into(), other.into()),
        ],
        _ => [
            ("upstream".into(), other.into()),
            ("patched".into(), linked),
        ],
    })
}

/// One worker per build (`[upstream, patched]`) with one model loaded, and what they said
/// when they started.
pub struct Pair {
    /// The workers.
    pub workers: [Worker; 2],
    /// Each build's ggml commit.
    pub commits: [String; 2],
    /// The devices each build's RPC servers added.
    pub rpc_devices: [Vec<RpcDevice>; 2],
    /// The model, as the patched build loaded it.
    pub model: LoadedModel,
}

impl Pair {
    /// Starts one worker per build, registers its RPC servers (`rpc`: `[upstream, patched]`)
    /// and loads `inst`'s model in each, with all of its model parameters; checks each runs
    /// the build it should.
    pub fn start(inst: &TestInstance, rpc: &[Vec<String>; 2]) -> Result<Pair> {
        let [(ub, ud), (pb, pd)] = build_dirs()?;
        let mut workers = [Worker::spawn(&ub, &ud)?, Worker::spawn(&pb, &pd)?];
        let commits = [
            workers[0].info()?.build_commit,
            workers[1].info()?.build_commit,
        ];
        if commits[0] == commits[1] || commits[0].contains("+p") || !commits[1].contains("+p") {
            return Err(format!(
                "workers run the wrong builds: upstream={} patched={}",
                commits[0], commits[1]
            ));
        }
        let mut rpc_devices: [Vec<RpcDevice>; 2] = Default::default();
        for ((w, servers), devices) in workers.iter_mut().zip(rpc).zip(&mut rpc_devices) {
            if !servers.is_empty() {
                *devices = w.rpc(servers)?;
            }
        }
        let upstream = workers[0].load(inst)?;
        let model = workers[1].load(inst)?;
        // The logits comparison reads rows of n_vocab floats from each.
        if upstream.n_vocab != model.n_vocab {
            return Err(format!(
                "the builds read {} differently: {upstream:?} vs {model:?}",
                inst.model
            ));
        }
        Ok(Pair {
            workers,
            commits,
            rpc_devices,
            model,
        })
    }

    /// Teacher-forces `steps` pseudo-random tokens through both builds and compares every
    /// step's logits, then both builds' greedy continuations of the first 8.
    pub fn correctness(&mut self, steps: usize, n_threads: i32) -> Result<Correctness> {
        let n_vocab = self.model.n_vocab;
        let mut rng = TokenRng::new(1234);
        let tokens: Vec<i32> = (0..steps.max(8))
            .map(|_| rng.next(i32::try_from(n_vocab).unwrap_or(i32::MAX).max(1)))
            .collect();
        let [u, p] = &mut self.workers;
        let logits = [
            u.logits(&tokens[..steps], n_threads)?,
            p.logits(&tokens[..steps], n_threads)?,
        ];
        let mut c = Correctness::of_logits([&logits[0], &logits[1]], n_vocab, steps);
        for (w, g) in self.workers.iter_mut().zip(&mut c.greedy) {
            *g = w.greedy(&tokens[..8], 16, n_threads)?;
        }
        Ok(c)
    }

    /// Each build's graph statistics for a batch of `n_tokens` (1: a decode step).
    pub fn graph(&mut self, n_tokens: u32, n_threads: i32) -> Result<[GraphCounts; 2]> {
        let [u, p] = &mut self.workers;
        Ok([u.graph(n_tokens, n_threads)?, p.graph(n_tokens, n_threads)?])
    }

    /// Runs `reps` repetitions of `inst` on both builds, alternating which goes first;
    /// nanoseconds per repetition of each build.
    pub fn measure(
        &mut self,
        inst: &TestInstance,
        reps: usize,
        no_warmup: bool,
        progress: &dyn Fn(&str),
    ) -> Result<[Vec<u64>; 2]> {
        for w in self.workers.iter_mut() {
            w.prepare(inst, no_warmup)?;
        }
        let mut out: [Vec<u64>; 2] = Default::default();
        for r in 0..reps {
            let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                // Let the other process's ggml threads stop spinning before timing this one.
                std::thread::sleep(std::time::Duration::from_millis(200));
                out[i].push(self.workers[i].rep()?);
                progress(&format!("{} rep {}/{}", self.workers[i].build, r + 1, reps));
            }
        }
        Ok(out)
    }
}
