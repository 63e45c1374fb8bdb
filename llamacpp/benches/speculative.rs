//! Plain greedy decoding against greedy speculative decoding on the tiny synthetic models:
//! `cargo bench -p llamacpp --bench speculative`.
//!
//! Each iteration generates [`TOKENS`] tokens from the same prompt (both contexts cleared
//! first), so criterion's time per iteration divides into tokens/s. Cases: the hybrid
//! qwen3next-tiny target alone; with the llama-tiny draft (random, unrelated weights: the
//! draft is almost never right, so this measures the overhead of failed guesses, checkpoints
//! and re-decodes); and drafting for itself (every guess right: the upper bound of what the
//! mechanics can give on this machine); and Qwen3-Next's own MTP head (a qwen3next-tiny with an
//! MTP block, random weights: its drafts are almost never right either), against plain greedy
//! decoding of the same file (the MTP loop's target also computes embeddings for every token,
//! which the plain case does not).
//! Acceptance rates are printed before the timings.
//! `LLAMACPP_BENCH_THREADS` sets the threads (default 1: spinning thread barriers dominate a
//! loaded machine).

use std::time::Duration;

use criterion::{Criterion, black_box};
use llamacpp::generate::{Generator, StopAt};
use llamacpp::mtp::{MtpModel, MtpSpeculative};
use llamacpp::speculative::SpeculativeDecoder;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain, Token};
use llamacpp_synth::{Preset, SynthOptions};

const TOKENS: usize = 64;
const N_DRAFT: usize = 4;
const PROMPT: &str = "The quick brown fox jumps over the lazy dog";

fn threads() -> i32 {
    std::env::var("LLAMACPP_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

fn params() -> ContextParams {
    ContextParams::default().n_ctx(512).n_threads(threads())
}

fn load(preset: Preset) -> Model {
    Model::load(
        llamacpp_synth::tiny_model_path(preset),
        ModelParams::default(),
    )
    .expect("load synthetic model")
}

fn plain<'m>(ctx: &mut Context<'m>, sampler: &mut SamplerChain<'m>, prompt: &[Token]) -> usize {
    ctx.clear_memory(false);
    sampler.reset();
    let stop = StopAt {
        max_tokens: TOKENS,
        stop_strings: vec![],
    };
    let mut g = Generator::new(ctx, sampler, prompt, 0, stop).expect("prompt");
    while let Some(p) = g.next_piece() {
        p.expect("decode");
    }
    g.tokens().len().min(TOKENS)
}

fn main() {
    llamacpp::backend::set_logging(false);
    let target = load(Preset::Qwen3NextTiny);
    let llama = load(Preset::LlamaTiny);
    let prompt = target
        .vocab()
        .tokenize(PROMPT, true, false)
        .expect("tokenize");
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group(format!("generate {TOKENS} tokens"));

    let mut tctx = Context::new(&target, params()).expect("context");
    let mut sampler = SamplerChain::builder(target.vocab())
        .greedy()
        .build()
        .expect("sampler");
    let n_plain = plain(&mut tctx, &mut sampler, &prompt);
    g.bench_function("qwen3next-tiny plain greedy", |b| {
        b.iter(|| black_box(plain(&mut tctx, &mut sampler, &prompt)))
    });

    for (name, draft) in [("llama-tiny draft", &llama), ("self draft", &target)] {
        let mut dctx = Context::new(draft, params()).expect("context");
        let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, N_DRAFT).expect("decoder");
        let out = spec.generate(&prompt, TOKENS).expect("generate");
        let s = spec.stats();
        println!(
            "qwen3next-tiny + {name}, n_draft {N_DRAFT}: {} tokens (plain: {n_plain}), \
             acceptance {:.1}% ({}/{}), {} target decodes",
            out.len(),
            100.0 * s.acceptance_rate(),
            s.accepted,
            s.drafted,
            s.target_decodes
        );
        g.bench_function(format!("qwen3next-tiny + {name}"), |b| {
            b.iter(|| black_box(spec.generate(&prompt, TOKENS).expect("generate").len()))
        });
    }
    mtp_cases(&mut g, &prompt);
    g.finish();
    c.final_summary();
}

/// The MTP head of a qwen3next-tiny written with one MTP block, against plain greedy decoding
/// of the same model; both with n_batch 64 (the MTP loop's batches stay within it).
fn mtp_cases(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    prompt: &[Token],
) {
    let opts = SynthOptions {
        mtp: true,
        ..SynthOptions::new(Preset::Qwen3NextTiny)
    };
    let path = llamacpp_synth::cached_model(&opts).expect("write qwen3next-tiny with MTP");
    let model = MtpModel::load(&path, ModelParams::default()).expect("load with MTP");
    let mut spec =
        MtpSpeculative::new(&model, params().n_batch(64), N_DRAFT).expect("MTP speculative");
    let out = spec.generate(prompt, TOKENS).expect("generate");
    let s = out.stats;
    println!(
        "qwen3next-tiny-mtp + its MTP head, n_draft {N_DRAFT}: {} tokens, acceptance {:.1}% ({}/{}), {} rounds",
        out.tokens.len(),
        100.0 * s.acceptance_rate(),
        s.accepted,
        s.drafted,
        s.rounds
    );
    g.bench_function("qwen3next-tiny-mtp + MTP head", |b| {
        b.iter(|| {
            black_box(
                spec.generate(prompt, TOKENS)
                    .expect("generate")
                    .tokens
                    .len(),
            )
        })
    });
    let mut ctx = Context::new(&model, params().n_batch(64)).expect("context");
    let mut sampler = SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .expect("sampler");
    g.bench_function("qwen3next-tiny-mtp plain greedy", |b| {
        b.iter(|| black_box(plain(&mut ctx, &mut sampler, prompt)))
    });
}
