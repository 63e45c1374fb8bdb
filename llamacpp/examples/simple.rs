//! Generate text from a prompt: `cargo run --example simple -- [-m MODEL] [-p PROMPT] [-n N]`.

#[path = "common/mod.rs"]
mod common;

use std::io::Write;

use llamacpp::generate::{Generator, StopAt};
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let prompt = common::arg("-p").unwrap_or_else(|| "Once upon a time".into());
    let n: usize = common::arg("-n").and_then(|s| s.parse().ok()).unwrap_or(32);
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(512))?;
    let mut sampler = SamplerChain::builder(model.vocab()).greedy().build()?;
    let tokens = model.vocab().tokenize(&prompt, true, false)?;
    print!("{prompt}");
    let mut generator = Generator::new(
        &mut ctx,
        &mut sampler,
        &tokens,
        0,
        StopAt {
            max_tokens: n,
            stop_strings: vec![],
        },
    )?;
    while let Some(piece) = generator.next_piece() {
        print!("{}", piece?);
        let _ = std::io::stdout().flush();
    }
    println!();
    Ok(())
}
