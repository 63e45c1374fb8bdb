//! Many threads, each with its own contexts, on shared models: every result equals what
//! one thread computes alone. `LLAMACPP_STRESS_SECS` sets how long the threads run (3 s by
//! default; the run documented in the README used 300). `.ci/tsan` runs this file under
//! ThreadSanitizer.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use llamacpp::{Batch, Context, ContextParams, SamplerChain, Token};

const PROMPTS: [&str; 4] = [
    "The quick brown fox jumps over the lazy dog",
    "Once upon a time",
    "fn main() { println!(\"hi\"); }",
    "1 2 3 4 5 6 7 8 9 10 11 12",
];

/// Everything one run of the workload observes, bit for bit.
#[derive(Debug, PartialEq)]
struct Outcome {
    prompt_logits: Vec<u32>,
    generated: Vec<Token>,
    restored_logits: Vec<u32>,
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Decode a prompt, sample 8 tokens with a seeded chain, then save the sequence's state,
/// clear the memory, restore the state and decode one more token.
fn workload(ctx: &mut Context<'_>, i: usize) -> Outcome {
    let model = ctx.model();
    let vocab = model.vocab();
    ctx.clear_memory(true);
    let prompt = vocab.tokenize(PROMPTS[i], true, false).unwrap();
    ctx.decode_tokens(&prompt).unwrap();
    let prompt_logits = bits(ctx.logits(-1).unwrap());
    let mut chain = SamplerChain::builder(vocab)
        .top_k(40)
        .temp(0.8)
        .dist(i as u32)
        .build()
        .unwrap();
    let mut generated = Vec::new();
    let mut pos = prompt.len() as i32;
    for _ in 0..8 {
        let t = chain.sample(ctx, -1).unwrap();
        generated.push(t);
        let mut b = Batch::from_tokens(&[t], pos, 0).unwrap();
        ctx.decode(&mut b).unwrap();
        pos += 1;
    }
    let state = ctx.seq_state(0).unwrap();
    ctx.clear_memory(true);
    ctx.set_seq_state(&state, 0).unwrap();
    let mut b = Batch::from_tokens(&[generated[0]], pos, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    let restored_logits = bits(ctx.logits(-1).unwrap());
    Outcome {
        prompt_logits,
        generated,
        restored_logits,
    }
}

fn params(n_threads: i32) -> ContextParams {
    ContextParams::default()
        .n_ctx(128)
        .n_threads(n_threads)
        .n_threads_batch(n_threads)
}

#[test]
fn threads_sharing_models_match_one_thread() {
    let secs: u64 = std::env::var("LLAMACPP_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let models = [Arc::new(common::dense()), Arc::new(common::qwen3next())];
    // (model, threads per context): the references, computed here before any worker starts.
    let configs = [(0, 1), (1, 1), (0, 2), (1, 2)];
    let references: Arc<Vec<Vec<Outcome>>> = Arc::new(
        configs
            .iter()
            .map(|&(m, nt)| {
                let mut ctx = Context::new(&models[m], params(nt)).unwrap();
                (0..PROMPTS.len()).map(|i| workload(&mut ctx, i)).collect()
            })
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    // Six workers over four configurations: each model is used by three threads at once,
    // and two threads share each (model, threads) pair.
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let c = w % configs.len();
            let (m, nt) = configs[c];
            let (model, references) = (models[m].clone(), references.clone());
            std::thread::spawn(move || {
                let mut runs = 0usize;
                let mut ctx = Context::new(&model, params(nt)).unwrap();
                while runs < PROMPTS.len() || Instant::now() < deadline {
                    // Every third run on a fresh context: creation and teardown race too.
                    if runs % 3 == 2 {
                        ctx = Context::new(&model, params(nt)).unwrap();
                    }
                    let i = (runs + w) % PROMPTS.len();
                    let got = workload(&mut ctx, i);
                    assert_eq!(
                        got, references[c][i],
                        "worker {w} (config {c}), prompt {i}, run {runs}"
                    );
                    runs += 1;
                }
                runs
            })
        })
        .collect();
    let runs: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    eprintln!("threads: {runs:?} runs per worker in {secs} s");
}
