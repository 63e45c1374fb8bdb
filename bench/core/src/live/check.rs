//! `compare --check`: what counts as a failure. Pure decisions over what the workers
//! measured, so every rule is unit-tested without a model.

use serde::{Deserialize, Serialize};

use super::CompareRow;
use crate::protocol::GraphCounts;

/// Max absolute difference and normalised mean squared error (`Σ(b-a)² / Σa²`) of `b`
/// against `a`, from the shared measure: a NaN, or logits of different lengths, is an
/// infinite difference, never a pass.
pub fn logit_diff(a: &[f32], b: &[f32]) -> (f64, f64) {
    (llamacpp_ggml::max_abs_diff(a, b), llamacpp_ggml::nmse(b, a))
}

/// Logits and greedy comparison between the two builds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Greedy continuation of each build: `[upstream, patched]`.
    pub greedy: [Vec<i32>; 2],
}

impl Correctness {
    /// Compares the first `steps` rows of `n_vocab` logits of each build (`[upstream,
    /// patched]`, row-major); `greedy` is filled in later.
    pub fn of_logits(logits: [&[f32]; 2], n_vocab: usize, steps: usize) -> Self {
        let mut c = Correctness {
            steps,
            ..Default::default()
        };
        for s in 0..steps {
            let r = s * n_vocab..(s + 1) * n_vocab;
            let (Some(u), Some(p)) = (logits[0].get(r.clone()), logits[1].get(r)) else {
                break;
            };
            let (max, nmse) = logit_diff(u, p);
            c.max_abs_diff = c.max_abs_diff.max(max);
            c.max_nmse = c.max_nmse.max(nmse);
            if s == 0 {
                c.first_nmse = nmse;
            }
        }
        c
    }

    /// Whether both builds continued the prompt alike.
    pub fn greedy_match(&self) -> bool {
        self.greedy[0] == self.greedy[1]
    }
}

/// Whether the patched build is slower than upstream by more than the noise: beyond twice
/// the combined standard error of `reps` repetitions, and by at least `min_rel`.
pub fn regressed(row: &CompareRow, reps: usize, min_rel: f64) -> bool {
    let n = reps.max(1) as f64;
    let (su, sp) = (
        row.upstream_stddev_ts.unwrap_or(0.0),
        row.patched_stddev_ts.unwrap_or(0.0),
    );
    let noise = 2.0 * ((su.powi(2) + sp.powi(2)) / n).sqrt();
    row.upstream_ts - row.patched_ts > noise.max(min_rel * row.upstream_ts)
}

/// The limits of `compare --check`; each `*_failures` method returns one message per
/// broken limit.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLimits {
    /// `--max-nmse`: the largest per-step logits NMSE allowed.
    pub max_nmse: f64,
    /// `--min-rel`: a slowdown smaller than this fraction is noise.
    pub min_rel: f64,
    /// `--min-speedup TEST=RATIO`: the patched build must reach this speedup on that test.
    pub min_speedup: Vec<(String, f64)>,
    /// `--max-nodes-ratio R`: patched decode nodes must be at most R x upstream's.
    pub max_nodes_ratio: Option<f64>,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits {
            max_nmse: 1e-6,
            min_rel: 0.03,
            min_speedup: Vec::new(),
            max_nodes_ratio: None,
        }
    }
}

impl CheckLimits {
    /// The logits must agree within `max_nmse`.
    pub fn correctness_failures(&self, model: &str, c: &Correctness) -> Vec<String> {
        (c.max_nmse > self.max_nmse)
            .then(|| {
                format!(
                    "{model}: logits NMSE {:.3e} > {:.1e}",
                    c.max_nmse, self.max_nmse
                )
            })
            .into_iter()
            .collect()
    }

    /// The patched decode graph (`decode`: `[upstream, patched]`) must not be larger, in
    /// nodes, copied or gathered bytes, and must stay within `max_nodes_ratio`.
    pub fn graph_failures(&self, model: &str, decode: &[GraphCounts; 2]) -> Vec<String> {
        let [u, p] = decode;
        let mut out = Vec::new();
        if p.n_nodes > u.n_nodes || p.copy_bytes > u.copy_bytes || p.gather_bytes > u.gather_bytes {
            out.push(format!(
                "{model}: patched decode graph is larger than upstream's"
            ));
        }
        if let Some(r) = self.max_nodes_ratio
            && p.n_nodes as f64 > r * u.n_nodes as f64
        {
            out.push(format!(
                "{model}: patched decode nodes {} > {r} x upstream's {}",
                p.n_nodes, u.n_nodes
            ));
        }
        out
    }

    /// The patched build must not be slower beyond noise, and must reach every
    /// `--min-speedup` that names this row's test.
    pub fn row_failures(&self, row: &CompareRow, reps: usize) -> Vec<String> {
        let model = &row.model_type;
        let mut out = Vec::new();
        if regressed(row, reps, self.min_rel) {
            out.push(format!(
                "{model} {}: patched {:.2} t/s < upstream {:.2} t/s beyond noise",
                row.test_name(),
                row.patched_ts,
                row.upstream_ts
            ));
        }
        let speedup = row.patched_ts / row.upstream_ts;
        for (test, min) in &self.min_speedup {
            if *test == row.test_name() && speedup < *min {
                out.push(format!(
                    "{model} {test}: speedup {speedup:.3} < required {min}"
                ));
            }
        }
        out
    }

    /// Every `--min-speedup` must name a test that ran.
    pub fn missing_tests(&self, rows: &[CompareRow]) -> Vec<String> {
        self.min_speedup
            .iter()
            .filter(|(test, _)| !rows.iter().any(|r| r.test_name() == *test))
            .map(|(test, _)| format!("--min-speedup {test}: no such test was run"))
            .collect()
    }
}

/// `TEST=RATIO`, the value of `--min-speedup`.
pub fn parse_min_speedup(v: &str) -> Result<(String, f64), String> {
    let (test, ratio) = v
        .split_once('=')
        .ok_or_else(|| format!("--min-speedup wants TEST=RATIO, got {v}"))?;
    let ratio: f64 = ratio
        .parse()
        .map_err(|e| format!("--min-speedup {v}: {e}"))?;
    if test.is_empty() || !ratio.is_finite() || ratio <= 0.0 {
        return Err(format!(
            "--min-speedup wants TEST=RATIO with a positive ratio, got {v}"
        ));
    }
    Ok((test.to_string(), ratio))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(test: (i32, i32), u: f64, us: f64, p: f64, ps: f64) -> CompareRow {
        CompareRow {
            model_filename: "m".into(),
            model_type: "t".into(),
            n_prompt: test.0,
            n_gen: test.1,
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
        assert!(!regressed(&row((512, 0), 100.0, 5.0, 97.0, 5.0), 5, 0.02));
        assert!(regressed(&row((512, 0), 100.0, 0.5, 90.0, 0.5), 5, 0.02));
        assert!(!regressed(&row((512, 0), 100.0, 0.1, 99.0, 0.1), 5, 0.02));
    }

    #[test]
    fn logit_diff_and_correctness_per_step() {
        let (max, nmse) = logit_diff(&[1.0, 2.0], &[1.0, 2.5]);
        assert!((max - 0.5).abs() < 1e-12);
        assert!((nmse - 0.25 / 5.0).abs() < 1e-12);
        // Two steps of three logits; only the second step differs.
        let u = [1.0, 2.0, 3.0, 1.0, 1.0, 1.0];
        let p = [1.0, 2.0, 3.0, 1.0, 1.0, 2.0];
        let c = Correctness::of_logits([&u, &p], 3, 2);
        assert_eq!((c.steps, c.first_nmse, c.max_abs_diff), (2, 0.0, 1.0));
        assert!((c.max_nmse - 1.0 / 3.0).abs() < 1e-12);
        // Short files compare what they hold instead of panicking.
        let c = Correctness::of_logits([&u[..4], &p], 3, 2);
        assert_eq!(c.max_nmse, 0.0);
    }

    #[test]
    fn limits_name_each_failure() {
        let limits = CheckLimits {
            min_speedup: vec![("pp512".into(), 1.3), ("tg32".into(), 1.05)],
            max_nodes_ratio: Some(0.75),
            ..CheckLimits::default()
        };
        let c = Correctness {
            max_nmse: 1e-3,
            ..Correctness::default()
        };
        assert_eq!(
            limits.correctness_failures("m", &c),
            ["m: logits NMSE 1.000e-3 > 1.0e-6"]
        );
        assert!(
            limits
                .correctness_failures("m", &Correctness::default())
                .is_empty()
        );

        let g = |n, b| GraphCounts {
            n_nodes: n,
            copy_bytes: b,
            ..GraphCounts::default()
        };
        assert!(
            limits
                .graph_failures("m", &[g(260, 9), g(185, 0)])
                .is_empty()
        );
        let f = limits.graph_failures("m", &[g(260, 9), g(200, 10)]);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].contains("larger") && f[1].contains("200 > 0.75"),
            "{f:?}"
        );
        // more bytes gathered is a larger graph too
        let gathered = |n, b| GraphCounts {
            gather_bytes: b,
            ..g(n, 0)
        };
        assert_eq!(
            limits
                .graph_failures("m", &[gathered(260, 9), gathered(185, 10)])
                .len(),
            1
        );

        // 1.2x on pp512 misses 1.3; tg32 at 1.1x passes; a slowdown fails as a regression.
        let pp = row((512, 0), 100.0, 1.0, 120.0, 1.0);
        assert_eq!(
            limits.row_failures(&pp, 5),
            ["t pp512: speedup 1.200 < required 1.3"]
        );
        assert!(
            limits
                .row_failures(&row((0, 32), 50.0, 0.5, 55.0, 0.5), 5)
                .is_empty()
        );
        let slow = limits.row_failures(&row((0, 32), 50.0, 0.1, 40.0, 0.1), 5);
        assert_eq!(slow.len(), 2, "{slow:?}");
        assert!(slow[0].contains("beyond noise"), "{slow:?}");

        assert_eq!(
            limits.missing_tests(&[pp]),
            ["--min-speedup tg32: no such test was run"]
        );
    }

    #[test]
    fn min_speedup_values() {
        assert_eq!(parse_min_speedup("pp512=1.3"), Ok(("pp512".into(), 1.3)));
        for bad in [
            "pp512",
            "=1.3",
            "pp512=x",
            "pp512=0",
            "pp512=-1",
            "pp512=nan",
        ] {
            assert!(parse_min_speedup(bad).is_err(), "{bad}");
        }
    }
}
