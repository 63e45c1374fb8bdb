//! `ContextParams::time_graph`: every node is reported with its time and sources, and
//! computing the graph node by node (or with a thread pool) leaves the logits bit for
//! bit the same.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llamacpp::{Batch, Context, ContextParams, GraphNode, Model};

type Records = Arc<Mutex<Vec<(GraphNode, Duration)>>>;

fn params() -> ContextParams {
    ContextParams::default()
        .n_ctx(64)
        .n_batch(16)
        .n_ubatch(16)
        .n_threads(2)
}

/// Decodes a fixed prompt, then `steps` fixed tokens one at a time; returns the logits
/// after each step and the wall time of each single-token decode.
fn run(model: &Model, ctx: &mut Context<'_>, steps: usize) -> (Vec<Vec<f32>>, Vec<Duration>) {
    let vocab = model.vocab();
    let prompt = vocab.tokenize("The quick brown fox", true, false).unwrap();
    let mut b = Batch::from_tokens(&prompt, 0, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    let (mut logits, mut walls) = (Vec::new(), Vec::new());
    for i in 0..steps {
        let t = vocab.token((7 + 13 * i as i32) % vocab.n_tokens()).unwrap();
        b.clear();
        b.add(t, (prompt.len() + i) as i32, &[0], true).unwrap();
        let t0 = Instant::now();
        ctx.decode(&mut b).unwrap();
        ctx.synchronize();
        walls.push(t0.elapsed());
        logits.push(ctx.logits(-1).unwrap().to_vec());
    }
    (logits, walls)
}

#[test]
fn time_graph_reports_every_node_and_leaves_logits_unchanged() {
    let model = common::qwen3next();
    let records: Records = Arc::default();
    let sink = Arc::clone(&records);
    let timed = params().thread_pool(true).time_graph(move |node, took| {
        sink.lock().unwrap().push((node.clone(), took));
    });
    let mut ctx = Context::new(&model, timed).unwrap();
    let vocab = model.vocab();
    let prompt = vocab.tokenize("The quick brown fox", true, false).unwrap();
    let mut b = Batch::from_tokens(&prompt, 0, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    assert!(
        !records.lock().unwrap().is_empty(),
        "prompt reported no node"
    );

    // One decode step, timed from outside and node by node.
    records.lock().unwrap().clear();
    let t = vocab.token(42).unwrap();
    b.clear();
    b.add(t, prompt.len() as i32, &[0], true).unwrap();
    let t0 = Instant::now();
    ctx.decode(&mut b).unwrap();
    ctx.synchronize();
    let wall = t0.elapsed();
    let step = std::mem::take(&mut *records.lock().unwrap());
    assert!(
        step.len() > 50,
        "only {} nodes in a decode step",
        step.len()
    );
    let sum: Duration = step.iter().map(|(_, d)| *d).sum();
    assert!(sum > Duration::ZERO);
    assert!(sum < wall, "nodes took {sum:?}, the whole decode {wall:?}");

    let mm: Vec<&GraphNode> = step
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.op == "MUL_MAT")
        .collect();
    assert!(!mm.is_empty(), "no MUL_MAT in a decode step");
    for n in &mm {
        assert!(n.srcs.len() >= 2, "{n:?}");
        assert!(
            n.srcs
                .iter()
                .all(|s| s.bytes > 0 && !s.type_name.is_empty())
        );
        // One token: the activation is a single column.
        assert_eq!(n.srcs[1].ne[1], 1, "{n:?}");
    }
    // The output projection reads the whole vocabulary matrix.
    let out = mm
        .iter()
        .find(|n| n.srcs[0].name == "output.weight")
        .expect("lm_head MUL_MAT");
    assert_eq!(out.srcs[0].ne[1], i64::from(vocab.n_tokens()));
    assert!(out.srcs[0].bytes >= (out.srcs[0].ne[0] * out.srcs[0].ne[1]) as usize / 2);
    // Routed experts: weights of every expert, activations, and the chosen expert ids.
    let moe: Vec<&GraphNode> = step
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.op == "MUL_MAT_ID")
        .collect();
    assert!(!moe.is_empty(), "no MUL_MAT_ID in a decode step");
    for n in &moe {
        assert_eq!(n.srcs.len(), 3, "{n:?}");
        assert!(n.srcs[0].name.contains("_exps"), "{n:?}");
        assert!(n.srcs[0].ne[2] > 1, "{n:?}");
        assert_eq!(n.srcs[2].type_name, "i32", "{n:?}");
        assert_eq!(n.srcs[2].ne[1], 1, "{n:?}");
    }

    // Node by node or in one piece, with or without a thread pool: the same logits.
    let mut plain = Context::new(&model, params()).unwrap();
    let (a, _) = run(&model, &mut plain, 4);
    let timer = |p: ContextParams| p.time_graph(|node, _| assert!(!node.op.is_empty()));
    for (what, p) in [
        ("a thread pool", params().thread_pool(true)),
        ("time_graph", timer(params())),
        (
            "time_graph and a thread pool",
            timer(params().thread_pool(true)),
        ),
    ] {
        let mut ctx = Context::new(&model, p).unwrap();
        let (b, walls) = run(&model, &mut ctx, 4);
        assert_eq!(walls.len(), 4);
        for (step, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.len(), y.len());
            let same = x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same, "step {step}: logits differ with {what}");
        }
    }
}

#[test]
fn the_last_graph_callback_set_wins() {
    let model = common::qwen3next();
    let observed = Arc::new(Mutex::new(0usize));
    let timed: Records = Arc::default();
    let (o, t) = (Arc::clone(&observed), Arc::clone(&timed));
    let p = params()
        .observe_graph(move |_| *o.lock().unwrap() += 1)
        .time_graph(move |n, d| t.lock().unwrap().push((n.clone(), d)));
    let mut ctx = Context::new(&model, p).unwrap();
    run(&model, &mut ctx, 1);
    assert_eq!(*observed.lock().unwrap(), 0);
    assert!(!timed.lock().unwrap().is_empty());
}

#[test]
fn a_panicking_timer_does_not_unwind_into_ggml_and_the_decode_reports_it() {
    let model = common::qwen3next();
    let p = params().time_graph(|node, _| {
        if node.op == "MUL_MAT" {
            panic!("timer panics at {}", node.op);
        }
    });
    let mut ctx = Context::new(&model, p).unwrap();
    let prompt = model.vocab().tokenize("The quick", true, false).unwrap();
    let mut b = Batch::from_tokens(&prompt, 0, 0).unwrap();
    match ctx.decode(&mut b) {
        Err(llamacpp::Error::CallbackPanicked { callback, message }) => {
            assert_eq!(
                (callback, message.as_str()),
                ("graph", "timer panics at MUL_MAT")
            );
        }
        other => panic!("expected the timer's panic, got {other:?}"),
    }
    // The batch was decoded all the same: the sequence has advanced over the prompt.
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(prompt.len() as i32 - 1));
}
