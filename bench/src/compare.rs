//! `llama-bench compare`: the same tests on the upstream and the patched build,
//! each in its own worker process, repetitions interleaved so machine drift
//! hits both alike; plus teacher-forced logits and greedy continuations.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks;
use crate::runner::TestSpec;
use crate::worker::{Request, Worker};
use crate::{Result, err};

/// The two builds' library directories: `[(upstream, dir), (patched, dir)]`.
pub fn build_dirs() -> Result<[(String, String); 2]> {
    let info = llama_sys::build_info::VARIANT;
    let other = llama_sys::build_info::OTHER_LIB_DIR
        .ok_or("this llama-bench was built without llama-sys's `side-by-side` feature: only one build is available")?;
    let linked = llama_sys::build_info::LIB_DIR.to_string();
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

/// Per-build measurement of one test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Samples {
    /// Nanoseconds per repetition.
    pub ns: Vec<u64>,
}

impl Samples {
    /// Tokens per second of each repetition.
    pub fn ts(&self, n_tokens: u32) -> Vec<f64> {
        self.ns
            .iter()
            .map(|&ns| f64::from(n_tokens) * 1e9 / ns.max(1) as f64)
            .collect()
    }
}

/// Mean and sample standard deviation.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareRow {
    /// Model file.
    pub model_filename: String,
    /// Model description (`qwen3next ?B Q4_0`).
    pub model_type: String,
    /// Prompt tokens.
    pub n_prompt: u32,
    /// Generated tokens.
    pub n_gen: u32,
    /// Depth.
    pub n_depth: u32,
    /// Threads.
    pub n_threads: i32,
    /// Upstream mean tokens/s.
    pub upstream_ts: f64,
    /// Upstream standard deviation.
    pub upstream_stddev_ts: f64,
    /// Patched mean tokens/s.
    pub patched_ts: f64,
    /// Patched standard deviation.
    pub patched_stddev_ts: f64,
    /// `patched_ts / upstream_ts`.
    pub speedup: f64,
    /// Teacher-forced logits: largest absolute difference over all steps.
    pub logits_max_abs_diff: Option<f64>,
    /// Teacher-forced logits: largest per-step NMSE.
    pub logits_nmse: Option<f64>,
    /// Whether both builds' greedy continuations are identical.
    pub greedy_match: Option<bool>,
    /// Memory-bandwidth figures for generation tests.
    pub roofline: Option<Value>,
}

impl CompareRow {
    /// Upstream llama-bench's test name: `pp512`, `tg128`, `pp512+tg128`, with ` @ dN`.
    pub fn test_name(&self) -> String {
        let mut s = match (self.n_prompt, self.n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        if self.n_depth > 0 {
            s.push_str(&format!(" @ d{}", self.n_depth));
        }
        s
    }

    /// Whether the patched build is slower than upstream by more than the noise:
    /// beyond twice the combined standard error, and by at least `min_rel`.
    pub fn regressed(&self, reps: usize, min_rel: f64) -> bool {
        let n = reps.max(1) as f64;
        let noise =
            2.0 * ((self.upstream_stddev_ts.powi(2) + self.patched_stddev_ts.powi(2)) / n).sqrt();
        self.upstream_ts - self.patched_ts > noise.max(min_rel * self.upstream_ts)
    }
}

/// Logits and greedy comparison between the two workers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Correctness {
    /// Steps compared.
    pub steps: usize,
    /// Largest absolute logit difference.
    pub max_abs_diff: f64,
    /// Largest per-step NMSE.
    pub max_nmse: f64,
    /// Greedy continuation of each build.
    pub greedy: [Vec<i32>; 2],
}

fn read_f32(path: &std::path::Path) -> Result<Vec<f32>> {
    let b = std::fs::read(path).map_err(err)?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Teacher-forces `steps` tokens through both workers and compares every step.
pub fn correctness(
    workers: &mut [Worker; 2],
    model_n_vocab: usize,
    steps: usize,
    n_threads: i32,
    tokens: &[i32],
) -> Result<Correctness> {
    let dir = tempfile::tempdir().map_err(err)?;
    let mut rows = Vec::new();
    for w in workers.iter_mut() {
        let out = dir.path().join(format!("{}.f32", w.build));
        w.call(&Request::Logits {
            tokens: tokens[..steps].to_vec(),
            n_threads,
            out: out.to_string_lossy().into(),
        })?;
        rows.push(read_f32(&out)?);
    }
    let mut c = Correctness {
        steps,
        ..Default::default()
    };
    for s in 0..steps {
        let r = s * model_n_vocab..(s + 1) * model_n_vocab;
        let (max, nmse) = checks::diff(&rows[0][r.clone()], &rows[1][r]);
        c.max_abs_diff = c.max_abs_diff.max(max);
        c.max_nmse = c.max_nmse.max(nmse);
    }
    for (i, w) in workers.iter_mut().enumerate() {
        let v = w.call(&Request::Greedy {
            prompt: tokens[..8.min(tokens.len())].to_vec(),
            n: 16,
            n_threads,
        })?;
        c.greedy[i] = serde_json::from_value(v["tokens"].clone()).map_err(err)?;
    }
    Ok(c)
}

/// Runs `reps` repetitions of `spec` on both workers, alternating which goes first.
pub fn measure(
    workers: &mut [Worker; 2],
    spec: &TestSpec,
    reps: usize,
    no_warmup: bool,
    progress: &dyn Fn(&str),
) -> Result<[Samples; 2]> {
    for w in workers.iter_mut() {
        w.call(&Request::Prepare {
            spec: spec.clone(),
            no_warmup,
        })?;
    }
    let mut out: [Samples; 2] = Default::default();
    for r in 0..reps {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let v = workers[i].call(&Request::Rep)?;
            out[i]
                .ns
                .push(v["ns"].as_u64().ok_or("worker returned no timing")?);
            progress(&format!("{} rep {}/{}", workers[i].build, r + 1, reps));
        }
    }
    Ok(out)
}

/// Starts one worker per build and loads the model in each; checks each runs the build it should.
pub fn start_workers(
    model: &str,
    n_gpu_layers: i32,
    use_mmap: bool,
) -> Result<([Worker; 2], Value)> {
    let [(ub, ud), (pb, pd)] = build_dirs()?;
    let mut ws = [Worker::spawn(&ub, &ud)?, Worker::spawn(&pb, &pd)?];
    let mut commits = Vec::new();
    for w in ws.iter_mut() {
        let info = w.call(&Request::Info)?;
        commits.push(info["build_commit"].as_str().unwrap_or("").to_string());
    }
    if commits[0] == commits[1] || commits[0].contains("+p") || !commits[1].contains("+p") {
        return Err(format!(
            "workers run the wrong builds: upstream={} patched={}",
            commits[0], commits[1]
        ));
    }
    let mut info = Value::Null;
    for w in ws.iter_mut() {
        info = w.call(&Request::Load {
            model: model.into(),
            n_gpu_layers,
            use_mmap,
        })?;
    }
    info["build_commits"] = serde_json::json!({"upstream": commits[0], "patched": commits[1]});
    Ok((ws, info))
}

/// Renders rows as upstream-style markdown: `Model | Test | t/s upstream | t/s patched | Speedup`.
pub fn markdown(rows: &[CompareRow]) -> String {
    let mut s =
        String::from("| Model | Test | t/s upstream | t/s patched | Speedup | logits NMSE |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: |\n");
    for r in rows {
        let nmse = r.logits_nmse.map_or("-".into(), |v| format!("{v:.2e}"));
        s.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} | {:.2} ± {:.2} | {:.3} | {} |\n",
            r.model_type,
            r.test_name(),
            r.upstream_ts,
            r.upstream_stddev_ts,
            r.patched_ts,
            r.patched_stddev_ts,
            r.speedup,
            nmse
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(u: f64, us: f64, p: f64, ps: f64) -> CompareRow {
        CompareRow {
            model_filename: "m".into(),
            model_type: "t".into(),
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
            n_threads: 2,
            upstream_ts: u,
            upstream_stddev_ts: us,
            patched_ts: p,
            patched_stddev_ts: ps,
            speedup: p / u,
            logits_max_abs_diff: None,
            logits_nmse: None,
            greedy_match: None,
            roofline: None,
        }
    }

    #[test]
    fn regression_needs_more_than_noise() {
        assert!(!row(100.0, 5.0, 97.0, 5.0).regressed(5, 0.02));
        assert!(row(100.0, 0.5, 90.0, 0.5).regressed(5, 0.02));
        assert!(!row(100.0, 0.1, 99.0, 0.1).regressed(5, 0.02));
    }

    #[test]
    fn test_names_follow_upstream() {
        let mut r = row(1.0, 0.0, 1.0, 0.0);
        assert_eq!(r.test_name(), "pp512");
        r.n_gen = 128;
        r.n_depth = 512;
        assert_eq!(r.test_name(), "pp512+tg128 @ d512");
        assert_eq!(mean_sd(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
    }
}
