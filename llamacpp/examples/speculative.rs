//! Greedy speculative decoding: `cargo run -p llamacpp --example speculative -- [-m TARGET]
//! [-d DRAFT] [-p PROMPT] [-n N] [--draft K]`.
//!
//! Without `-m`/`-d` the target is the tiny synthetic qwen3next (hybrid) and the draft the
//! tiny synthetic llama, which share a vocabulary. Their weights are random and unrelated, so
//! the draft is rarely right: the example shows the mechanics and that the text equals plain
//! greedy decoding, not a speed-up (a real draft of the same family accepts far more).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use llamacpp::generate::{Generator, StopAt};
use llamacpp::speculative::SpeculativeDecoder;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain, Token};
use llamacpp_synth::{Preset, SynthOptions};

fn draft_path() -> std::path::PathBuf {
    if let Some(p) = common::arg("-d") {
        return p.into();
    }
    match llamacpp_synth::cached_model(&SynthOptions::new(Preset::LlamaTiny)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot write the synthetic draft model: {e}");
            std::process::exit(1)
        }
    }
}

fn text(model: &Model, tokens: &[Token]) -> llamacpp::Result<String> {
    model.vocab().detokenize(tokens, false, false)
}

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let target = Model::load(
        common::model_path(Preset::Qwen3NextTiny),
        ModelParams::default(),
    )?;
    let draft = Model::load(draft_path(), ModelParams::default())?;
    let prompt = common::arg("-p").unwrap_or_else(|| "Once upon a time".into());
    let n: usize = common::arg("-n").and_then(|s| s.parse().ok()).unwrap_or(64);
    let k: usize = common::arg("--draft")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let params = || ContextParams::default().n_ctx(1024).n_threads(1);
    let tokens = target.vocab().tokenize(&prompt, true, false)?;

    // Plain greedy decoding of the target, for reference and speed.
    let mut ctx = Context::new(&target, params())?;
    let mut sampler = SamplerChain::builder(target.vocab()).greedy().build()?;
    let stop = StopAt {
        max_tokens: n,
        stop_strings: vec![],
    };
    let t0 = Instant::now();
    let mut generator = Generator::new(&mut ctx, &mut sampler, &tokens, 0, stop)?;
    while let Some(piece) = generator.next_piece() {
        piece?;
    }
    let plain_time = t0.elapsed().as_secs_f64();
    let plain: Vec<Token> = generator.tokens().iter().copied().take(n).collect();
    drop(generator);

    let mut tctx = Context::new(&target, params())?;
    let mut dctx = Context::new(&draft, params())?;
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, k)?;
    let t0 = Instant::now();
    let out = spec.generate(&tokens, n)?;
    let spec_time = t0.elapsed().as_secs_f64();
    let s = spec.stats();

    println!("{prompt}{}", text(&target, &out)?);
    println!("---");
    println!(
        "target {}, draft {}, {k} guesses per round",
        target.description(),
        draft.description()
    );
    println!(
        "plain greedy:  {} tokens in {plain_time:.3} s ({:.1} tokens/s)",
        plain.len(),
        plain.len() as f64 / plain_time
    );
    println!(
        "speculative:   {} tokens in {spec_time:.3} s ({:.1} tokens/s), {} target decodes",
        out.len(),
        out.len() as f64 / spec_time,
        s.target_decodes
    );
    println!(
        "drafted {}, accepted {} ({:.1}%), identical to plain greedy: {}",
        s.drafted,
        s.accepted,
        100.0 * s.acceptance_rate(),
        out == plain
    );
    Ok(())
}
