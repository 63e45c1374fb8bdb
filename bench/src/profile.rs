//! `llama-bench profile`: where a decode step's time goes, node kind by node kind,
//! and the bandwidth each kind of matrix multiplication reaches reading its weights,
//! beside the machine's read bandwidth (measured as `llama-bench membw` measures it).
//! A step may also be a prompt ubatch (`-b 512`), and the layers may be offloaded
//! (`-ngl 99`): then the per-op times are a GPU's (each node computed and synchronised
//! alone) and the CPU's read bandwidth is not measured.
//!
//! The step is timed node by node with [`ContextParams::time_graph`], which computes
//! each node alone, on a persistent thread pool ([`ContextParams::thread_pool`]) so
//! that a node does not pay for starting threads. Plain decodes of the same tokens,
//! with that pool and without it (as the benchmark runner decodes), show what each
//! costs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llamacpp::{Batch, Context, ContextParams, GraphNode, Model, ModelParams, Token};
use llamacpp_bench_core::live::profile::{NodeTotals, Profile, ProfileRow, profile_markdown};

use crate::cli::model_or_default;
use crate::roofline;
use crate::runner::TokenRng;
use crate::{Result, err};

/// Prompt tokens decoded (in one batch) before the steps.
const N_PROMPT: u32 = 8;
/// Untimed decode steps after the prompt.
const N_WARMUP: u32 = 2;

/// `llama-bench profile`: per-op times and matmul bandwidth of a decode step.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// Model (default: the synthetic Qwen3-Next-80B-A3B, 4 layers, Q4_0).
    #[arg(short = 'm', long = "model")]
    model: Option<String>,
    /// Threads (for the decode and the bandwidth measurement).
    #[arg(short = 't', long = "threads", default_value_t = 2)]
    threads: i32,
    /// Decode steps to time, after an 8-token prompt and 2 warm-up steps.
    #[arg(short = 'n', long = "n-steps", default_value_t = 16)]
    steps: u32,
    /// Tokens per step, decoded as one ubatch: 1 times a decode step, 512 a pp512 ubatch.
    #[arg(short = 'b', long = "batch", default_value_t = 1)]
    batch: u32,
    /// Layers offloaded to the first GPU (as `llama-bench -ngl`).
    #[arg(long = "n-gpu-layers", alias = "ngl", default_value_t = 0)]
    n_gpu_layers: i32,
    /// Output format: md or json.
    #[arg(short = 'o', long = "output", default_value = "md")]
    output: String,
}

/// Whether an op is a matrix multiplication whose first source is read in full.
fn is_matmul(op: &str) -> bool {
    matches!(op, "MUL_MAT" | "MUL_MAT_ID")
}

/// The role of a matmul's first source (see [`ProfileRow::role`]).
fn role(node: &GraphNode) -> String {
    if let Some(w) = node.srcs.first()
        && let Some(base) = w.name.strip_suffix(".weight")
    {
        return match base.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((_, role)) => role.to_string(),
            None => base.to_string(),
        };
    }
    match node.name.rsplit_once('-') {
        Some((base, layer)) if layer.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
        _ => node.name.clone(),
    }
}

/// Bytes of the first source a matmul node reads: all of it for `MUL_MAT`; for
/// `MUL_MAT_ID`, one expert's share times the number of distinct experts its ids can
/// name (`n_expert_used * n_tokens`, at most `n_expert`). 0 for other nodes.
fn weight_bytes(node: &GraphNode) -> u64 {
    let Some(w) = node.srcs.first() else {
        return 0;
    };
    match node.op.as_str() {
        "MUL_MAT" => w.bytes as u64,
        "MUL_MAT_ID" => {
            let n_expert = w.ne[2].max(1) as u64;
            let used = node
                .srcs
                .get(2)
                .map_or(n_expert, |ids| (ids.ne[0].max(0) * ids.ne[1].max(0)) as u64)
                .min(n_expert);
            w.bytes as u64 / n_expert * used
        }
        _ => 0,
    }
}

type Sink = Arc<Mutex<BTreeMap<(String, Option<String>), NodeTotals>>>;

/// Decodes the prompt, then `tokens`' rest in steps of `per_step` tokens (one ubatch
/// each, logits of the last): the warm-up steps, a call of `start`, and the timed steps,
/// whose wall times it returns.
fn decode(
    ctx: &mut Context<'_>,
    tokens: &[Token],
    per_step: usize,
    start: impl FnOnce(),
) -> Result<Vec<Duration>> {
    let n_prompt = N_PROMPT as usize;
    let mut batch = Batch::new(n_prompt.max(per_step), 1).map_err(err)?;
    let add = |batch: &mut Batch, from: usize, n: usize| -> Result<()> {
        batch.clear();
        for (i, &t) in tokens.iter().enumerate().skip(from).take(n) {
            batch
                .add(t, i as i32, &[0], i + 1 == from + n)
                .map_err(err)?;
        }
        Ok(())
    };
    add(&mut batch, 0, n_prompt)?;
    ctx.decode(&mut batch).map_err(err)?;
    let mut start = Some(start);
    let mut walls = Vec::new();
    for (step, from) in (n_prompt..tokens.len()).step_by(per_step).enumerate() {
        if step == N_WARMUP as usize
            && let Some(f) = start.take()
        {
            f();
        }
        add(&mut batch, from, per_step)?;
        let t0 = Instant::now();
        ctx.decode(&mut batch).map_err(err)?;
        ctx.synchronize();
        if step >= N_WARMUP as usize {
            walls.push(t0.elapsed());
        }
    }
    Ok(walls)
}

fn mean_ms(walls: &[Duration]) -> f64 {
    walls.iter().sum::<Duration>().as_secs_f64() * 1e3 / walls.len().max(1) as f64
}

/// Measures the profile of `model_path` as the (validated) arguments say.
fn measure(model_path: &str, a: &ProfileArgs) -> Result<Profile> {
    let (threads, steps, batch, n_gpu_layers) = (a.threads, a.steps, a.batch, a.n_gpu_layers);
    let bw = if n_gpu_layers > 0 {
        0.0
    } else {
        eprintln!("profile: measuring read bandwidth ({threads} threads)");
        roofline::measure_read_bandwidth(threads.max(1) as usize) / 1e9
    };
    let model = Model::load(
        model_path,
        ModelParams::default().n_gpu_layers(n_gpu_layers),
    )
    .map_err(err)?;
    let vocab = model.vocab();
    let mut rng = TokenRng::new(99);
    let tokens = (0..N_PROMPT + (N_WARMUP + steps) * batch)
        .map(|_| vocab.token(rng.next(vocab.n_tokens())))
        .collect::<llamacpp::Result<Vec<Token>>>()
        .map_err(err)?;
    let n_ctx = tokens.len() as u32 + 8;
    let n_batch = N_PROMPT.max(batch);
    let params = || {
        ContextParams::default()
            .n_ctx(n_ctx)
            .n_batch(n_batch)
            .n_ubatch(n_batch)
            .n_threads(threads)
            .no_perf(true)
    };
    let per_step = batch as usize;

    eprintln!("profile: {steps} plain steps of {batch} token(s) without and with a thread pool");
    let mut ctx = Context::new(&model, params()).map_err(err)?;
    let plain_no_pool = decode(&mut ctx, &tokens, per_step, || {})?;
    drop(ctx);
    let mut ctx = Context::new(&model, params().thread_pool(true)).map_err(err)?;
    let plain = decode(&mut ctx, &tokens, per_step, || {})?;
    drop(ctx);

    eprintln!("profile: {steps} steps timed node by node");
    let sink: Sink = Arc::default();
    let on = Arc::clone(&sink);
    let timed_params = params().thread_pool(true).time_graph(move |node, took| {
        let Ok(mut m) = on.lock() else { return };
        let key = (node.op.clone(), is_matmul(&node.op).then(|| role(node)));
        let acc = m.entry(key).or_default();
        acc.nodes += 1;
        acc.time += took;
        acc.bytes += weight_bytes(node);
    });
    let mut ctx = Context::new(&model, timed_params).map_err(err)?;
    let clear = Arc::clone(&sink);
    let timed = decode(&mut ctx, &tokens, per_step, move || {
        if let Ok(mut m) = clear.lock() {
            m.clear();
        }
    })?;
    drop(ctx);

    let step_ms = mean_ms(&timed);
    let accs = sink.lock().map_err(err)?;
    let mut rows: Vec<ProfileRow> = accs
        .iter()
        .map(|((op, role), acc)| {
            ProfileRow::from_totals(op.clone(), role.clone(), acc, steps, step_ms, bw)
        })
        .collect();
    rows.sort_by(|a, b| b.ms_per_step.total_cmp(&a.ms_per_step));
    let mm = accs.iter().filter(|((op, _), _)| is_matmul(op)).fold(
        NodeTotals::default(),
        |t, (_, a)| NodeTotals {
            nodes: t.nodes + a.nodes,
            time: t.time + a.time,
            bytes: t.bytes + a.bytes,
        },
    );
    let nodes_ms = rows.iter().map(|r| r.ms_per_step).sum::<f64>();
    Ok(Profile {
        model: model_path.to_string(),
        model_desc: model.description(),
        build_commit: llamacpp::backend::build_commit(),
        threads,
        n_gpu_layers,
        batch,
        n_prompt: N_PROMPT,
        n_warmup: N_WARMUP,
        steps,
        step_ms_plain_no_pool: mean_ms(&plain_no_pool),
        step_ms_plain: mean_ms(&plain),
        step_ms_timed: step_ms,
        nodes_ms,
        outside_nodes_ms: step_ms - nodes_ms,
        read_bandwidth_gbs: bw,
        matmuls: ProfileRow::from_totals("all matmuls".into(), None, &mm, steps, step_ms, bw),
        rows,
    })
}

/// `llama-bench profile [-m MODEL] [-t THREADS] [-n STEPS] [-b TOKENS] [-ngl N] [-o md|json]`.
pub fn run(a: &ProfileArgs) -> Result<()> {
    if !matches!(a.output.as_str(), "md" | "json") {
        return Err(format!("-o {}: expected md or json", a.output));
    }
    if a.steps == 0 {
        return Err("-n: at least one step".into());
    }
    if a.threads < 1 {
        return Err(format!("-t {}: at least one thread", a.threads));
    }
    if a.batch == 0 {
        return Err("-b: at least one token per step".into());
    }
    llamacpp::backend::set_logging(false);
    let model = model_or_default(a.model.clone())?;
    let p = measure(&model, a)?;
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&p).map_err(err)?);
    } else {
        print!("{}", profile_markdown(&p));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llamacpp::SrcInfo;

    fn src(name: &str, bytes: usize, ne: [i64; 4]) -> SrcInfo {
        SrcInfo {
            name: name.into(),
            bytes,
            type_name: "q4_0".into(),
            ne,
        }
    }

    fn node(op: &str, name: &str, srcs: Vec<SrcInfo>) -> GraphNode {
        GraphNode {
            op: op.into(),
            name: name.into(),
            bytes: 0,
            src0_contiguous: Some(true),
            ne: [1, 1, 1, 1],
            srcs,
        }
    }

    #[test]
    fn roles_name_the_weight_or_the_node() {
        let w = |name: &str| node("MUL_MAT", "x-3", vec![src(name, 1, [1; 4])]);
        assert_eq!(role(&w("blk.12.ffn_down_exps.weight")), "ffn_down_exps");
        assert_eq!(role(&w("output.weight")), "output");
        assert_eq!(role(&w("cache_k_l3 (view)")), "x");
        assert_eq!(role(&node("MUL_MAT", "kq", vec![])), "kq");
        assert_eq!(role(&node("MUL_MAT", "a-b", vec![])), "a-b");
    }

    #[test]
    fn expert_matmuls_read_the_used_experts_only() {
        let exps = src("blk.0.ffn_up_exps.weight", 512 * 1000, [2048, 512, 512, 1]);
        let act = src("x", 8192, [2048, 1, 1, 1]);
        let ids = |n_used, n_tokens| src("ids", 40, [n_used, n_tokens, 1, 1]);
        let one = node(
            "MUL_MAT_ID",
            "up",
            vec![exps.clone(), act.clone(), ids(10, 1)],
        );
        assert_eq!(weight_bytes(&one), 10 * 1000);
        let many = node("MUL_MAT_ID", "up", vec![exps, act.clone(), ids(10, 512)]);
        assert_eq!(weight_bytes(&many), 512 * 1000);
        let dense = node("MUL_MAT", "o", vec![src("o.weight", 777, [1; 4]), act]);
        assert_eq!(weight_bytes(&dense), 777);
        assert_eq!(
            weight_bytes(&node("ADD", "a", vec![src("b", 5, [1; 4])])),
            0
        );
    }
}
