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

use clap::{CommandFactory, Parser};
use llamacpp::{Batch, Context, ContextParams, GraphNode, Model, ModelParams, Token};
use llamacpp_bench::params::normalize_args;
use llamacpp_bench::table::{Align, Table};
use serde::Serialize;

use crate::cli::model_or_default;
use crate::roofline;
use crate::runner::TokenRng;
use crate::{Result, err};

/// Prompt tokens decoded (in one batch) before the steps.
const N_PROMPT: u32 = 8;
/// Untimed decode steps after the prompt.
const N_WARMUP: u32 = 2;

/// `llama-bench profile`: per-op times and matmul bandwidth of a decode step.
#[derive(Debug, Parser)]
#[command(name = "llama-bench profile")]
struct ProfileArgs {
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

/// One row of the profile: the nodes of one op (and, for a matmul, one weight role).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProfileRow {
    /// ggml op name (`MUL_MAT`, `MUL_MAT_ID`, `ADD`, ...).
    pub op: String,
    /// For a matmul, what its first source is: a weight's GGUF name without the
    /// `blk.N.` prefix and `.weight` suffix (`ffn_down_exps`, `attn_qkv`, `output`),
    /// else the node's name without its `-N` layer suffix (`kq`, `kqv`).
    pub role: Option<String>,
    /// Nodes per step.
    pub nodes_per_step: f64,
    /// Milliseconds per step, node by node.
    pub ms_per_step: f64,
    /// Share of the timed step's wall time (0..1).
    pub share: f64,
    /// Bytes of the first source (weights, or the K/V cache for attention) that the
    /// step's matmuls read: for `MUL_MAT_ID` only the experts the step uses. 0 for
    /// other ops.
    pub weight_bytes_per_step: f64,
    /// `weight_bytes_per_step / ms_per_step` in GB/s (rows with weight bytes only).
    pub gbs: Option<f64>,
    /// `gbs` as a share of the machine's read bandwidth (0..1).
    pub membw_share: Option<f64>,
}

/// The whole profile (`-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Model path.
    pub model: String,
    /// llama.cpp's description of the model.
    pub model_desc: String,
    /// Commit of the linked llama.cpp build.
    pub build_commit: String,
    /// Threads.
    pub threads: i32,
    /// Layers offloaded to a GPU.
    pub n_gpu_layers: i32,
    /// Tokens per step (one ubatch).
    pub batch: u32,
    /// Prompt tokens before the steps.
    pub n_prompt: u32,
    /// Untimed warm-up steps.
    pub n_warmup: u32,
    /// Timed decode steps.
    pub steps: u32,
    /// Mean wall time of a step without the timer and without a thread pool (worker
    /// threads started for every graph, as the benchmark runner decodes), in ms.
    pub step_ms_plain_no_pool: f64,
    /// Mean wall time of a step without the timer, on a thread pool, in ms.
    pub step_ms_plain: f64,
    /// Mean wall time of a step timed node by node (on a thread pool), in ms.
    pub step_ms_timed: f64,
    /// Sum of the node times per step, in ms.
    pub nodes_ms: f64,
    /// `step_ms_timed - nodes_ms`: graph building, scheduling and the output copy.
    pub outside_nodes_ms: f64,
    /// Read bandwidth of the machine with `threads` threads (as `llama-bench membw`), GB/s;
    /// 0 when layers are offloaded (not measured: the weights are read by a GPU).
    pub read_bandwidth_gbs: f64,
    /// Every matmul row together.
    pub matmuls: ProfileRow,
    /// Rows, slowest first.
    pub rows: Vec<ProfileRow>,
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

/// Node times of the timed steps, per (op, role).
#[derive(Debug, Default)]
struct Acc {
    nodes: u64,
    time: Duration,
    bytes: u64,
}

type Sink = Arc<Mutex<BTreeMap<(String, Option<String>), Acc>>>;

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

/// Builds a row from its totals over `steps` steps.
fn row(
    op: String,
    role: Option<String>,
    acc: &Acc,
    steps: u32,
    step_ms: f64,
    bw: f64,
) -> ProfileRow {
    let steps = f64::from(steps.max(1));
    let ms = acc.time.as_secs_f64() * 1e3 / steps;
    let bytes = acc.bytes as f64 / steps;
    // Only matmuls read weights (`weight_bytes`).
    let gbs = (acc.bytes > 0 && ms > 0.0).then(|| bytes / (ms * 1e-3) / 1e9);
    ProfileRow {
        op,
        role,
        nodes_per_step: acc.nodes as f64 / steps,
        ms_per_step: ms,
        share: if step_ms > 0.0 { ms / step_ms } else { 0.0 },
        weight_bytes_per_step: bytes,
        gbs,
        membw_share: gbs.filter(|_| bw > 0.0).map(|g| g / bw),
    }
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
        .map(|((op, role), acc)| row(op.clone(), role.clone(), acc, steps, step_ms, bw))
        .collect();
    rows.sort_by(|a, b| b.ms_per_step.total_cmp(&a.ms_per_step));
    let mm = accs
        .iter()
        .filter(|((op, _), _)| is_matmul(op))
        .fold(Acc::default(), |t, (_, a)| Acc {
            nodes: t.nodes + a.nodes,
            time: t.time + a.time,
            bytes: t.bytes + a.bytes,
        });
    let nodes_ms = rows.iter().map(|r| r.ms_per_step).sum::<f64>();
    Ok(Profile {
        model: model_path.to_string(),
        model_desc: model.description(),
        build_commit: crate::worker::loaded_commit(),
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
        matmuls: row("all matmuls".into(), None, &mm, steps, step_ms, bw),
        rows,
    })
}

/// The profile as markdown: a summary and one table.
fn markdown(p: &Profile) -> String {
    let pct = |x: f64, of: f64| {
        if of > 0.0 {
            format!("{:+.0}%", 100.0 * (x / of - 1.0))
        } else {
            "?".into()
        }
    };
    let offload = if p.n_gpu_layers > 0 {
        format!(", {} layers offloaded", p.n_gpu_layers)
    } else {
        String::new()
    };
    let bandwidth = if p.read_bandwidth_gbs > 0.0 {
        format!("{:.2} GB/s", p.read_bandwidth_gbs)
    } else {
        "not measured (offloaded)".into()
    };
    let mut out = format!(
        "model: {} ({}), build {}, {} threads{}: {} steps of {} token(s) after a {}-token prompt and {} warm-up steps\n\
         step, plain: {:.2} ms on a thread pool, {:.2} ms starting threads per graph ({})\n\
         step, timed node by node on the pool: {:.2} ms ({}): nodes {:.2} ms, outside nodes {:.2} ms\n\
         read bandwidth (as `llama-bench membw`): {}\n\n",
        p.model_desc,
        p.model,
        p.build_commit,
        p.threads,
        offload,
        p.steps,
        p.batch,
        p.n_prompt,
        p.n_warmup,
        p.step_ms_plain,
        p.step_ms_plain_no_pool,
        pct(p.step_ms_plain_no_pool, p.step_ms_plain),
        p.step_ms_timed,
        pct(p.step_ms_timed, p.step_ms_plain),
        p.nodes_ms,
        p.outside_nodes_ms,
        bandwidth,
    );
    let mut t = Table::new([
        ("op", Align::Left),
        ("weight", Align::Left),
        ("nodes/step", Align::Right),
        ("ms/step", Align::Right),
        ("share", Align::Right),
        ("weight MB/step", Align::Right),
        ("GB/s", Align::Right),
        ("% of membw", Align::Right),
    ]);
    let cells = |r: &ProfileRow| {
        vec![
            r.op.clone(),
            r.role.clone().unwrap_or_default(),
            format!("{:.0}", r.nodes_per_step),
            format!("{:.3}", r.ms_per_step),
            format!("{:.1}%", 100.0 * r.share),
            if r.weight_bytes_per_step > 0.0 {
                format!("{:.1}", r.weight_bytes_per_step / 1e6)
            } else {
                String::new()
            },
            r.gbs.map_or(String::new(), |g| format!("{g:.1}")),
            r.membw_share
                .map_or(String::new(), |s| format!("{:.0}%", 100.0 * s)),
        ]
    };
    for r in &p.rows {
        t.push(cells(r));
    }
    t.push(vec![
        "(outside nodes)".into(),
        String::new(),
        String::new(),
        format!("{:.3}", p.outside_nodes_ms),
        if p.step_ms_timed > 0.0 {
            format!("{:.1}%", 100.0 * p.outside_nodes_ms / p.step_ms_timed)
        } else {
            String::new()
        },
    ]);
    t.push(cells(&p.matmuls));
    out.push_str(&t.render());
    out
}

/// `llama-bench profile [-m MODEL] [-t THREADS] [-n STEPS] [-b TOKENS] [-ngl N] [-o md|json]`.
pub fn run(args: &[String]) -> Result<()> {
    // upstream's single-dash long flags (`-ngl 99`) as `llama-bench` itself takes them
    let argv = normalize_args(
        &ProfileArgs::command(),
        std::iter::once("profile".to_string()).chain(args.iter().cloned()),
    );
    let a = ProfileArgs::try_parse_from(argv).map_err(err)?;
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
    let p = measure(&model, &a)?;
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&p).map_err(err)?);
    } else {
        print!("{}", markdown(&p));
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

    #[test]
    fn rows_turn_totals_into_per_step_rates() {
        let acc = Acc {
            nodes: 8,
            time: Duration::from_millis(4),
            bytes: 4_000_000,
        };
        let r = row("MUL_MAT".into(), None, &acc, 2, 10.0, 4.0);
        assert_eq!(r.nodes_per_step, 4.0);
        assert_eq!(r.ms_per_step, 2.0);
        assert_eq!(r.share, 0.2);
        assert_eq!(r.weight_bytes_per_step, 2e6);
        assert_eq!(r.gbs, Some(1.0));
        assert_eq!(r.membw_share, Some(0.25));
        let add = Acc { bytes: 0, ..acc };
        assert_eq!(row("ADD".into(), None, &add, 2, 10.0, 4.0).gbs, None);
    }
}
