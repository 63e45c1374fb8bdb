//! The flags of `llama-bench compare`: upstream's benchmark flags, plus the checks and RPC
//! servers of a side-by-side run, or two saved runs.

use std::path::PathBuf;

use clap::Args;
use llamacpp_bench_core::live::CheckLimits;
use llamacpp_bench_core::live::check::parse_min_speedup;
use llamacpp_bench_core::params::BenchArgs;

use crate::rpc::CompareRpc;

/// `llama-bench compare [flags]` runs the tests on the upstream and the patched build side by
/// side; `llama-bench compare A B` compares two saved runs (`-o jsonl`, `json`, `csv` or `sql`).
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Each build runs in its own worker process; repetitions alternate which \
                  build goes first. Before timing, both builds decode the same tokens and \
                  their logits and greedy continuations are compared."
)]
pub struct CompareArgs {
    /// Two saved runs to compare instead of running (no other flags).
    #[arg(value_name = "SAVED", num_args = 0..=2)]
    pub saved: Vec<PathBuf>,
    /// Fail (exit 1) on diverging logits, a larger patched graph, a slowdown beyond noise or
    /// a missed `--min-speedup`.
    #[arg(long = "check")]
    pub check: bool,
    /// Tokens teacher-forced through both builds for the logits comparison.
    #[arg(long = "steps", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
    /// `--check`: the largest per-step logits NMSE allowed.
    #[arg(long = "max-nmse", default_value_t = 1e-6)]
    pub max_nmse: f64,
    /// `--check`: a slowdown smaller than this fraction of upstream's speed is noise.
    #[arg(long = "min-rel", default_value_t = 0.03)]
    pub min_rel: f64,
    /// `--check`: the patched build must reach RATIO x upstream's speed on TEST (`pp512=1.3`);
    /// may be given several times.
    #[arg(long = "min-speedup", value_name = "TEST=RATIO", value_parser = parse_min_speedup)]
    pub min_speedup: Vec<(String, f64)>,
    /// `--check`: patched decode-graph nodes must be at most R x upstream's.
    #[arg(long = "max-nodes-ratio", value_name = "R")]
    pub max_nodes_ratio: Option<f64>,
    /// RPC servers of each build.
    #[command(flatten)]
    pub rpc: CompareRpc,
    /// Upstream llama-bench's flags.
    #[command(flatten)]
    pub bench: BenchArgs,
}

impl CompareArgs {
    /// The limits `--check` applies.
    pub fn limits(&self) -> CheckLimits {
        CheckLimits {
            max_nmse: self.max_nmse,
            min_rel: self.min_rel,
            min_speedup: self.min_speedup.clone(),
            max_nodes_ratio: self.max_nodes_ratio,
        }
    }

    /// Limits given without `--check` would look applied but never be checked: an error
    /// naming them. `given` holds the flags given on the command line.
    pub fn check_flags_without_check(&self, given: &[String]) -> Option<String> {
        const CHECK_ONLY: [&str; 4] = [
            "--max-nmse",
            "--min-rel",
            "--min-speedup",
            "--max-nodes-ratio",
        ];
        let unused: Vec<&str> = given
            .iter()
            .map(String::as_str)
            .filter(|f| CHECK_ONLY.contains(f))
            .collect();
        (!self.check && !unused.is_empty()).then(|| format!("{} needs --check", unused.join(", ")))
    }
}
