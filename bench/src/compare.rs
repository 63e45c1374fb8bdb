//! `llama-bench compare`: the same tests on the upstream and the patched build,
//! each in its own worker process, repetitions interleaved so machine drift
//! hits both alike; plus teacher-forced logits and greedy continuations.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks;
use llamacpp_bench::params::TestInstance;

use crate::worker::{Request, Worker};
use crate::{Result, err};

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

/// Per-build measurement of one test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Samples {
    /// Nanoseconds per repetition.
    pub ns: Vec<u64>,
}

/// Whether the patched build is slower than upstream by more than the noise:
/// beyond twice the combined standard error, and by at least `min_rel`.
pub fn regressed(row: &llamacpp_bench::live::CompareRow, reps: usize, min_rel: f64) -> bool {
    let n = reps.max(1) as f64;
    let (su, sp) = (
        row.upstream_stddev_ts.unwrap_or(0.0),
        row.patched_stddev_ts.unwrap_or(0.0),
    );
    let noise = 2.0 * ((su.powi(2) + sp.powi(2)) / n).sqrt();
    row.upstream_ts - row.patched_ts > noise.max(min_rel * row.upstream_ts)
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
    /// NMSE of the first step: a kernel that differs shows at once, while rounding
    /// differences start tiny and grow through a recurrent model's states.
    #[serde(default)]
    pub first_nmse: f64,
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
        if s == 0 {
            c.first_nmse = nmse;
        }
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

/// Runs `reps` repetitions of `inst` on both workers, alternating which goes first.
pub fn measure(
    workers: &mut [Worker; 2],
    inst: &TestInstance,
    reps: usize,
    no_warmup: bool,
    progress: &dyn Fn(&str),
) -> Result<[Samples; 2]> {
    for w in workers.iter_mut() {
        w.call(&Request::Prepare {
            inst: inst.clone(),
            no_warmup,
        })?;
    }
    let mut out: [Samples; 2] = Default::default();
    for r in 0..reps {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            // Let the other process's ggml threads stop spinning before timing this one.
            std::thread::sleep(std::time::Duration::from_millis(200));
            let v = workers[i].call(&Request::Rep)?;
            out[i]
                .ns
                .push(v["ns"].as_u64().ok_or("worker returned no timing")?);
            progress(&format!("{} rep {}/{}", workers[i].build, r + 1, reps));
        }
    }
    Ok(out)
}

/// Starts one worker per build, registers its RPC servers (`rpc`: `[upstream, patched]`) and
/// loads `inst`'s model in each, with all of its model parameters; checks each runs the build
/// it should. The info has the model's figures, `build_commits` and `rpc_devices` of each build.
pub fn start_workers(inst: &TestInstance, rpc: &[Vec<String>; 2]) -> Result<([Worker; 2], Value)> {
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
    let mut rpc_devices = Vec::new();
    for (w, servers) in ws.iter_mut().zip(rpc) {
        rpc_devices.push(if servers.is_empty() {
            Value::Array(Vec::new())
        } else {
            w.call(&Request::Rpc {
                servers: servers.clone(),
            })?
        });
    }
    let mut info = Value::Null;
    for w in ws.iter_mut() {
        info = w.call(&Request::Load { inst: inst.clone() })?;
    }
    info["build_commits"] = serde_json::json!({"upstream": commits[0], "patched": commits[1]});
    info["rpc_devices"] =
        serde_json::json!({"upstream": rpc_devices[0], "patched": rpc_devices[1]});
    Ok((ws, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(u: f64, us: f64, p: f64, ps: f64) -> llamacpp_bench::live::CompareRow {
        llamacpp_bench::live::CompareRow {
            model_filename: "m".into(),
            model_type: "t".into(),
            n_prompt: 512,
            n_gen: 0,
            n_depth: 0,
            upstream_ts: u,
            upstream_stddev_ts: Some(us),
            patched_ts: p,
            patched_stddev_ts: Some(ps),
            speedup: p / u,
            logits_max_abs_diff: None,
            logits_nmse: None,
            upstream_rpc: Vec::new(),
            patched_rpc: Vec::new(),
        }
    }

    #[test]
    fn regression_needs_more_than_noise() {
        assert!(!regressed(&row(100.0, 5.0, 97.0, 5.0), 5, 0.02));
        assert!(regressed(&row(100.0, 0.5, 90.0, 0.5), 5, 0.02));
        assert!(!regressed(&row(100.0, 0.1, 99.0, 0.1), 5, 0.02));
    }
}
