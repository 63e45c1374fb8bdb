//! Subcommand entry points.

use clap::Parser;

use crate::compare;
use crate::models;
use crate::roofline;
use crate::worker::Request;
use crate::{Result, err};

/// `llama-bench graph`: per build, the node statistics of one decode step and one prompt ubatch.
#[derive(Debug, Parser)]
#[command(name = "llama-bench graph")]
struct GraphArgs {
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
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
    /// Also list every computing node (op, name, shape) of each graph.
    #[arg(long = "nodes")]
    nodes: bool,
}

/// `llama-bench membw`: the machine's read bandwidth.
#[derive(Debug, Parser)]
#[command(name = "llama-bench membw")]
struct MembwArgs {
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

/// One row of `graph -o json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GraphRow {
    /// `upstream` or `patched`.
    pub build: String,
    /// `decode` or `prompt`.
    pub phase: String,
    /// The counts.
    #[serde(flatten)]
    pub counts: crate::checks::GraphCounts,
}

pub fn graph(args: &[String]) -> Result<()> {
    // Upstream spells the ubatch flag `-ub`; clap wants long flags with `--`.
    let argv = args.iter().map(|a| {
        if a == "-ub" {
            "--ub".to_string()
        } else {
            a.clone()
        }
    });
    let a =
        GraphArgs::try_parse_from(std::iter::once("graph".to_string()).chain(argv)).map_err(err)?;
    let model = model_or_default(a.model)?;
    // The model loaded as upstream's defaults load it, on the CPU.
    let mut p = llamacpp_bench::params::default_params();
    p.model = vec![model];
    p.n_gpu_layers = vec![0];
    let inst = p.instances().into_iter().next().ok_or("no test instance")?;
    let (mut workers, _) = compare::start_workers(&inst, &Default::default())?;
    let mut rows = Vec::new();
    for w in workers.iter_mut() {
        for (phase, n) in [("decode", 1), ("prompt", a.n_ubatch)] {
            let v = w.call(&Request::Graph {
                n_tokens: n,
                n_threads: a.threads,
            })?;
            let mut counts: crate::checks::GraphCounts = serde_json::from_value(v).map_err(err)?;
            if !a.nodes {
                counts.nodes.clear();
            }
            rows.push(GraphRow {
                build: w.build.clone(),
                phase: phase.into(),
                counts,
            });
        }
    }
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(err)?);
        return Ok(());
    }
    println!("| build | phase | nodes | copy nodes | copy bytes | compute buffer |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for r in &rows {
        let c = &r.counts;
        println!(
            "| {} | {} | {} | {} | {} | {:.2} MiB |",
            r.build,
            r.phase,
            c.n_nodes,
            c.copy_nodes,
            c.copy_bytes,
            c.compute_buffer_bytes as f64 / 1048576.0
        );
    }
    println!();
    let ops: std::collections::BTreeSet<&String> =
        rows.iter().flat_map(|r| r.counts.ops.keys()).collect();
    println!(
        "| op | {} |",
        rows.iter()
            .map(|r| format!("{} {}", r.build, r.phase))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("| --- |{}", " ---: |".repeat(rows.len()));
    for op in ops {
        let cells: Vec<String> = rows
            .iter()
            .map(|r| r.counts.ops.get(op).copied().unwrap_or(0).to_string())
            .collect();
        println!("| {op} | {} |", cells.join(" | "));
    }
    for r in rows.iter().filter(|r| !r.counts.nodes.is_empty()) {
        println!(
            "\n{} {} ({} nodes):",
            r.build,
            r.phase,
            r.counts.nodes.len()
        );
        for (i, n) in r.counts.nodes.iter().enumerate() {
            println!("{i:4} {n}");
        }
    }
    Ok(())
}

pub fn membw(args: &[String]) -> Result<()> {
    let a =
        MembwArgs::try_parse_from(std::iter::once("membw".to_string()).chain(args.iter().cloned()))
            .map_err(err)?;
    let bw = roofline::measure_read_bandwidth(a.threads as usize);
    println!(
        "read bandwidth: {:.2} GB/s ({} threads)",
        bw / 1e9,
        a.threads
    );
    Ok(())
}

/// `llama-bench synth`: write a synthetic model (see `llamacpp_synth::cli::SynthArgs`).
#[derive(Debug, Parser)]
#[command(name = "llama-bench synth")]
struct SynthCmd {
    #[command(flatten)]
    args: llamacpp_synth::cli::SynthArgs,
}

pub fn synth(args: &[String]) -> Result<()> {
    let a =
        SynthCmd::try_parse_from(std::iter::once("synth".to_string()).chain(args.iter().cloned()))
            .map_err(err)?;
    llamacpp_synth::cli::run(&a.args).map_err(err)?;
    Ok(())
}
