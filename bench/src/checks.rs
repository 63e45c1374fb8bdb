//! Deterministic figures: teacher-forced logits, greedy continuations and
//! compute-graph statistics, each computed in the process of one build.

use std::sync::{Arc, Mutex};

use llamacpp::{Batch, Context, ContextParams, Model};
use llamacpp_bench_core::protocol::{COPY_OPS, GATHER_OP, GraphCounts};

use crate::runner::TokenRng;
use crate::{Result, err};

/// Feeds `tokens` one at a time (decode graphs) and returns the logits after each.
pub fn teacher_forced(model: &Model, tokens: &[i32], n_threads: i32) -> Result<Vec<Vec<f32>>> {
    let params = ContextParams::default()
        .n_ctx(tokens.len() as u32 + 8)
        .n_batch(64)
        .n_ubatch(64)
        .n_threads(n_threads);
    let mut ctx = Context::new(model, params).map_err(err)?;
    let vocab = model.vocab();
    let mut out = Vec::with_capacity(tokens.len());
    let mut batch = Batch::new(1, 1).map_err(err)?;
    for (i, &id) in tokens.iter().enumerate() {
        batch.clear();
        batch
            .add(vocab.token(id).map_err(err)?, i as i32, &[0], true)
            .map_err(err)?;
        ctx.decode(&mut batch).map_err(err)?;
        out.push(ctx.logits(0).map_err(err)?.to_vec());
    }
    Ok(out)
}

/// Greedy continuation of `prompt` for `n` tokens.
pub fn greedy(model: &Model, prompt: &[i32], n: usize, n_threads: i32) -> Result<Vec<i32>> {
    let params = ContextParams::default()
        .n_ctx((prompt.len() + n) as u32 + 8)
        .n_threads(n_threads);
    let mut ctx = Context::new(model, params).map_err(err)?;
    let vocab = model.vocab();
    let toks: Vec<_> = prompt
        .iter()
        .map(|&id| vocab.token(id))
        .collect::<llamacpp::Result<_>>()
        .map_err(err)?;
    let mut batch = Batch::from_tokens(&toks, 0, 0).map_err(err)?;
    ctx.decode(&mut batch).map_err(err)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let logits = ctx.logits(-1).map_err(err)?;
        let next = argmax(logits);
        out.push(next);
        batch.clear();
        batch
            .add(
                vocab.token(next).map_err(err)?,
                (prompt.len() + i) as i32,
                &[0],
                true,
            )
            .map_err(err)?;
        ctx.decode(&mut batch).map_err(err)?;
    }
    Ok(out)
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as i32
}

/// Statistics of one decode step (`n_tokens = 1`: the second step of a sequence, as every
/// generated token runs it) or one prompt ubatch (`n_tokens = n_ubatch`).
pub fn graph_counts(model: &Model, n_tokens: u32, n_threads: i32) -> Result<GraphCounts> {
    let counts = Arc::new(Mutex::new(GraphCounts::default()));
    let sink = Arc::clone(&counts);
    let params = ContextParams::default()
        .n_ctx(n_tokens.max(64) + 8)
        .n_batch(n_tokens.max(1))
        .n_ubatch(n_tokens.max(1))
        .n_threads(n_threads)
        .observe_graph(move |node| {
            let Ok(mut c) = sink.lock() else { return };
            // Views and reshapes are free: count only nodes that compute.
            if matches!(
                node.op.as_str(),
                "VIEW" | "RESHAPE" | "PERMUTE" | "TRANSPOSE" | "NONE"
            ) {
                return;
            }
            c.n_nodes += 1;
            *c.ops.entry(node.op.clone()).or_default() += 1;
            let [a, b, d, e] = node.ne;
            c.nodes
                .push(format!("{} {} [{a},{b},{d},{e}]", node.op, node.name));
            if COPY_OPS.contains(&node.op.as_str()) {
                c.copy_nodes += 1;
                c.copy_bytes += node.bytes as u64;
            } else if node.op == GATHER_OP {
                c.gather_bytes += node.bytes as u64;
            }
        });
    let (ctx, log) = llamacpp::backend::capture_info_log(|| Context::new(model, params));
    let mut ctx = ctx.map_err(err)?;
    let vocab = model.vocab();
    let mut rng = TokenRng::new(7);
    let mut batch = Batch::new(n_tokens as usize, 1).map_err(err)?;
    for i in 0..n_tokens {
        let t = vocab.token(rng.next(vocab.n_tokens())).map_err(err)?;
        batch
            .add(t, i as i32, &[0], i + 1 == n_tokens)
            .map_err(err)?;
    }
    if n_tokens == 1 {
        // A sequence's first step also clears its recurrent state; count a later,
        // steady-state step, the one every generated token runs.
        ctx.decode(&mut batch).map_err(err)?;
        let t = vocab.token(rng.next(vocab.n_tokens())).map_err(err)?;
        batch.clear();
        batch.add(t, 1, &[0], true).map_err(err)?;
        *counts.lock().map_err(err)? = GraphCounts::default();
    }
    ctx.decode(&mut batch).map_err(err)?;
    ctx.synchronize();
    drop(ctx);
    let mut c = counts.lock().map_err(err)?.clone();
    c.compute_buffer_bytes = compute_buffer_bytes(&log);
    Ok(c)
}

/// Sums the "compute buffer size = X MiB" lines llama.cpp logs when a context is created.
pub fn compute_buffer_bytes(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("compute buffer size"))
        .filter_map(|l| {
            l.split('=')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map(|mib| (mib * 1024.0 * 1024.0).round() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn parses_compute_buffer_lines() {
        let log = "llama_context:        CPU compute buffer size =   300.75 MiB\nother\nx: CUDA0 compute buffer size = 1.00 MiB";
        assert_eq!(compute_buffer_bytes(log), (301.75 * 1048576.0) as u64);
    }
}
