//! A chat with the model's own (jinja) template that keeps its memory between turns, then
//! edits its last question (re-reading only that turn, on hybrid models too, from a
//! checkpoint): `cargo run --example chat -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llamacpp::chat::ChatTemplate;
use llamacpp::generate::ChatSession;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::Qwen3NextTiny),
        ModelParams::default(),
    )?;
    // The model's own template (jinja), else llama.cpp's built-in ChatML.
    let template = ChatTemplate::from_model(&model).unwrap_or_else(|_| "chatml".into());
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
    let question = "And what can you not do?";
    println!("> (edited) {question}");
    chat.edit_last(question, 24, |piece| print!("{piece}"))?;
    println!();
    let stats = chat.cache_stats();
    println!(
        "prompt cache: {} of {} prompts reused memory, {} tokens reused, {} fed, {} checkpoint restores",
        stats.hits, stats.prompts, stats.tokens_reused, stats.tokens_fed, stats.checkpoint_restores
    );
    Ok(())
}
