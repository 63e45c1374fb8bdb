//! The cost of the safe layer in the generation loop: one token per batch,
//! decode, sample (greedy or seeded dist; `llama_sampler_sample` also accepts),
//! through `llamacpp` and through raw `llamacpp-sys` calls, on the tiny synthetic
//! models (llama-tiny, qwen3next-tiny), same threads and context size.
//!
//! `cargo bench -p llamacpp --bench decode_sample` prints criterion's time per
//! token for each pair, then a paired measurement: [`PAIRED_TOKENS`] tokens
//! of each, one safe and one raw in turn, and the ratio of the median token
//! times. `LLAMACPP_BENCH_THREADS` sets the threads (default 1: spinning thread
//! barriers dominate a loaded machine).
//!
//! Timing noise on a shared machine is a few percent; the safe layer's own cost
//! is far below it, so it is best measured in instructions (deterministic):
//! run one loop alone (see [`only`]) under valgrind at two token counts,
//! e.g. for `N` in 100 and 300
//! `DECODE_SAMPLE_ONLY=safe DECODE_SAMPLE_CASE=llama-tiny/greedy DECODE_SAMPLE_TOKENS=N
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> --bench`,
//! and divide the difference of the "Collected" counts by 200 (same for `raw`).

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use llamacpp::{Batch, Context, ContextParams, Model, ModelParams, SamplerChain, Token};
use llamacpp_synth::Preset;
use llamacpp_sys as sys;

const N_CTX: u32 = 512;
const SEED: u32 = 1234;
const PAIRED_TOKENS: usize = 2000;

#[derive(Clone, Copy)]
enum Pick {
    Greedy,
    Dist,
}

impl Pick {
    fn name(self) -> &'static str {
        match self {
            Pick::Greedy => "greedy",
            Pick::Dist => "dist",
        }
    }
}

fn threads() -> i32 {
    std::env::var("LLAMACPP_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// One token in flight through the safe API.
struct SafeLoop<'m> {
    ctx: Context<'m>,
    chain: SamplerChain<'m>,
    batch: Batch,
    token: Token,
    pos: i32,
}

impl<'m> SafeLoop<'m> {
    fn new(model: &'m Model, pick: Pick) -> Self {
        let ctx = Context::new(
            model,
            ContextParams::default()
                .n_ctx(N_CTX)
                .n_batch(N_CTX)
                .n_threads(threads()),
        )
        .expect("context");
        let builder = SamplerChain::builder(model.vocab());
        let chain = match pick {
            Pick::Greedy => builder.greedy(),
            Pick::Dist => builder.dist(SEED),
        }
        .build()
        .expect("chain");
        let token = model
            .vocab()
            .bos()
            .unwrap_or(model.vocab().token(0).expect("token 0"));
        Self {
            ctx,
            chain,
            batch: Batch::new(1, 1).expect("batch"),
            token,
            pos: 0,
        }
    }

    fn step(&mut self) {
        if self.pos >= N_CTX as i32 - 1 {
            self.ctx.clear_memory(false);
            self.pos = 0;
        }
        self.batch.clear();
        self.batch
            .add(self.token, self.pos, &[0], true)
            .expect("add");
        self.ctx.decode(&mut self.batch).expect("decode");
        self.token = self.chain.sample(&mut self.ctx, -1).expect("sample");
        self.pos += 1;
    }
}

/// The same loop against the C API.
struct RawLoop {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    chain: *mut sys::llama_sampler,
    batch: sys::llama_batch,
    token: sys::llama_token,
    pos: i32,
}

impl RawLoop {
    fn new(path: &Path, pick: Pick, first: Token) -> Self {
        let path = CString::new(path.to_string_lossy().as_bytes()).expect("path");
        // SAFETY: plain C API use: every pointer is checked and freed in Drop; the batch
        // has room for one token with one sequence id.
        unsafe {
            let model =
                sys::llama_model_load_from_file(path.as_ptr(), sys::llama_model_default_params());
            assert!(!model.is_null());
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = N_CTX;
            cp.n_batch = N_CTX;
            cp.n_threads = threads();
            cp.n_threads_batch = threads();
            let ctx = sys::llama_init_from_model(model, cp);
            assert!(!ctx.is_null());
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            let picker = match pick {
                Pick::Greedy => sys::llama_sampler_init_greedy(),
                Pick::Dist => sys::llama_sampler_init_dist(SEED),
            };
            sys::llama_sampler_chain_add(chain, picker);
            Self {
                model,
                ctx,
                chain,
                batch: sys::llama_batch_init(1, 0, 1),
                token: first.id(),
                pos: 0,
            }
        }
    }

    fn step(&mut self) {
        // SAFETY: as in `new`; index 0 is within the batch's capacity of one.
        unsafe {
            if self.pos >= N_CTX as i32 - 1 {
                sys::llama_memory_clear(sys::llama_get_memory(self.ctx), false);
                self.pos = 0;
            }
            let b = &mut self.batch;
            b.n_tokens = 1;
            *b.token = self.token;
            *b.pos = self.pos;
            *b.n_seq_id = 1;
            **b.seq_id = 0;
            *b.logits = 1;
            assert_eq!(sys::llama_decode(self.ctx, self.batch), 0);
            self.token = sys::llama_sampler_sample(self.chain, self.ctx, -1);
        }
        self.pos += 1;
    }
}

impl Drop for RawLoop {
    fn drop(&mut self) {
        // SAFETY: each was created in `new` and is freed once.
        unsafe {
            sys::llama_batch_free(self.batch);
            sys::llama_sampler_free(self.chain);
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `DECODE_SAMPLE_ONLY=safe|raw DECODE_SAMPLE_CASE=llama-tiny/greedy DECODE_SAMPLE_TOKENS=N`:
/// runs just that loop for N tokens, nothing else, for instruction counts
/// (`perf stat -e instructions:u` at two N; the difference over the token
/// difference is the per-token count, free of setup and of timing noise).
fn only(which: &str) {
    let case = std::env::var("DECODE_SAMPLE_CASE").unwrap_or_else(|_| "llama-tiny/greedy".into());
    let n: usize = std::env::var("DECODE_SAMPLE_TOKENS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let (preset, pick) = match case.split_once('/') {
        Some(("qwen3next-tiny", p)) => (Preset::Qwen3NextTiny, p),
        Some((_, p)) => (Preset::LlamaTiny, p),
        None => (Preset::LlamaTiny, "greedy"),
    };
    let pick = if pick == "dist" {
        Pick::Dist
    } else {
        Pick::Greedy
    };
    let path = llamacpp_synth::tiny_model_path(preset);
    if which == "raw" {
        let model = Model::load(&path, ModelParams::default()).expect("model");
        let first = SafeLoop::new(&model, pick).token;
        drop(model);
        let mut raw = RawLoop::new(&path, pick, first);
        (0..n).for_each(|_| raw.step());
        black_box(raw.token);
    } else {
        let model = Model::load(&path, ModelParams::default()).expect("model");
        let mut safe = SafeLoop::new(&model, pick);
        (0..n).for_each(|_| safe.step());
        black_box(safe.token);
    }
}

fn main() {
    llamacpp::backend::set_logging(false);
    if let Ok(which) = std::env::var("DECODE_SAMPLE_ONLY") {
        return only(&which);
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut paired = Vec::new();
    for preset in [Preset::LlamaTiny, Preset::Qwen3NextTiny] {
        let path = llamacpp_synth::tiny_model_path(preset);
        let model = Model::load(&path, ModelParams::default()).expect("model");
        for pick in [Pick::Greedy, Pick::Dist] {
            let mut safe = SafeLoop::new(&model, pick);
            let mut raw = RawLoop::new(&path, pick, safe.token);
            let mut g = c.benchmark_group(format!("decode_sample/{preset}/{}", pick.name()));
            g.bench_function("safe", |b| {
                b.iter_custom(|n| time(n as usize, || safe.step()))
            });
            g.bench_function("raw", |b| {
                b.iter_custom(|n| time(n as usize, || raw.step()))
            });
            g.finish();
            // Paired: alternate one safe and one raw token (order swapped every pair), so
            // both see the same machine state; medians ignore preempted tokens.
            let (mut safe_ns, mut raw_ns) = (Vec::new(), Vec::new());
            for i in 0..PAIRED_TOKENS {
                let one = |f: &mut dyn FnMut()| time(1, f).as_nanos() as f64;
                if i % 2 == 0 {
                    safe_ns.push(one(&mut || safe.step()));
                    raw_ns.push(one(&mut || raw.step()));
                } else {
                    raw_ns.push(one(&mut || raw.step()));
                    safe_ns.push(one(&mut || safe.step()));
                }
            }
            black_box((safe.token, raw.token));
            let (s, r) = (median(safe_ns), median(raw_ns));
            paired.push((format!("{preset}/{}", pick.name()), s, r, s / r));
        }
    }
    println!(
        "\npaired ({PAIRED_TOKENS} alternating tokens each, {} thread(s), median per token):",
        threads()
    );
    println!(
        "{:<28} {:>12} {:>12} {:>9}",
        "model/sampler", "safe us/tok", "raw us/tok", "safe/raw"
    );
    for (name, s, r, ratio) in paired {
        println!(
            "{name:<28} {:>12.1} {:>12.1} {ratio:>9.4}",
            s / 1e3,
            r / 1e3
        );
    }
    c.final_summary();
}
