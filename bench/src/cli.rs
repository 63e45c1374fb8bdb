//! The small subcommands: `graph` and `membw`.

use llamacpp_bench_core::live::{Build, GraphStats, Phase, graph_stats_markdown};

use crate::compare::Pair;
use crate::models;
use crate::roofline;
use crate::{Result, err};

/// `llama-bench graph`: per build, the node statistics of one decode step and one prompt ubatch.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Model (default: the synthetic Qwen3-Next-80B-A3B, 4 layers, Q4_0).
    #[arg(short = 'm', long = "model")]
    model: Option<String>,
    /// Tokens in the prompt ubatch.
    #[arg(long = "ubatch-size", visible_alias = "ub", default_value_t = 512)]
    n_ubatch: u32,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = default_threads())]
    threads: i32,
    /// Output format: md or json.
    #[arg(short = 'o', long = "output", default_value = "md", value_parser = ["md", "json"])]
    output: String,
    /// Also list every computing node (op, name, shape) of each graph.
    #[arg(long = "nodes")]
    nodes: bool,
}

/// `llama-bench membw`: the machine's read bandwidth.
#[derive(Debug, clap::Args)]
pub struct MembwArgs {
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = default_threads())]
    threads: i32,
}

pub(crate) fn default_threads() -> i32 {
    std::thread::available_parallelism().map_or(4, |n| n.get() as i32)
}

/// `m`, or the default model's path (generated first when needed).
pub(crate) fn model_or_default(m: Option<String>) -> Result<String> {
    match m {
        Some(m) => Ok(m),
        None => Ok(models::default_model()?.to_string_lossy().into_owned()),
    }
}

/// `llama-bench graph`: runs a pair of workers and prints each build's counts.
pub fn graph(a: GraphArgs) -> Result<()> {
    let model = model_or_default(a.model)?;
    // The model loaded as upstream's defaults load it, on the CPU.
    let mut p = llamacpp_bench_core::params::default_params();
    p.model = vec![model];
    p.n_gpu_layers = vec![0];
    let inst = p.instances().into_iter().next().ok_or("no test instance")?;
    let mut pair = Pair::start(&inst, &Default::default())?;
    let mut rows = Vec::new();
    for (w, build) in pair
        .workers
        .iter_mut()
        .zip([Build::Upstream, Build::Patched])
    {
        for (phase, n) in [(Phase::Decode, 1), (Phase::Prompt, a.n_ubatch)] {
            let mut counts = w.graph(n, a.threads)?;
            if !a.nodes {
                counts.nodes.clear();
            }
            rows.push(GraphStats {
                build,
                phase,
                counts,
            });
        }
    }
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(err)?);
    } else {
        print!("{}", graph_stats_markdown(&rows));
    }
    Ok(())
}

/// `llama-bench membw`.
pub fn membw(a: &MembwArgs) -> Result<()> {
    let bw = roofline::measure_read_bandwidth(a.threads as usize);
    println!(
        "read bandwidth: {:.2} GB/s ({} threads)",
        bw / 1e9,
        a.threads
    );
    Ok(())
}
