//! A two-turn chat that keeps its KV cache between turns:
//! `cargo run --example chat -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llamacpp::generate::ChatSession;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::Qwen3NextTiny),
        ModelParams::default(),
    )?;
    let template = model.chat_template(None).unwrap_or_else(|| "chatml".into());
    let ctx = Context::new(&model, ContextParams::default().n_ctx(1024))?;
    let sampler = SamplerChain::builder(model.vocab())
        .top_k(40)
        .temp(0.8)
        .dist(1)
        .build()?;
    let mut chat = ChatSession::new(ctx, sampler, template);
    chat.system("You are terse.");
    for question in ["Hello, who are you?", "And what can you do?"] {
        println!("> {question}");
        chat.ask(question, 24, |piece| print!("{piece}"))?;
        println!();
    }
    Ok(())
}
