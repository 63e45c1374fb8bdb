//! The application `.ci/app-check.sh` builds outside the workspace, as a user would: `cargo new`,
//! `cargo add llamacpp llamacpp-synth`, this file as `src/main.rs`. It writes a tiny synthetic
//! Qwen3-Next (random weights) unless given a model, chats two turns through the model's own chat
//! template with a seeded sampler chain, checks what it can check alone, and prints a transcript
//! that the script compares between the packaged-crates build and the git-dependency build.

use llamacpp::chat::{ChatMessage, apply_template};
use llamacpp::generate::ChatSession;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};
use llamacpp_synth::{Preset, SynthOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    llamacpp::backend::set_logging(false);
    let path = match std::env::args().nth(1) {
        Some(p) => p.into(),
        None => llamacpp_synth::cached_model(&SynthOptions::new(Preset::Qwen3NextTiny))?,
    };
    let model = Model::load(&path, ModelParams::default())?;
    let arch = model.architecture().unwrap_or_default();
    if arch != "qwen3next" {
        return Err(format!("expected a qwen3next model, got {arch:?}").into());
    }
    let template = model
        .chat_template(None)
        .ok_or("the synthetic model carries no chat template")?;
    let probe = apply_template(&template, &[ChatMessage::new("user", "ping")], true)?;
    if !probe.contains("ping") || !probe.ends_with("assistant\n") {
        return Err(format!("template output lacks the message or the prefix: {probe:?}").into());
    }

    let ctx = Context::new(&model, ContextParams::default().n_ctx(512))?;
    let sampler = SamplerChain::builder(model.vocab())
        .top_k(40)
        .temp(0.8)
        .dist(1234)
        .build()?;
    let mut chat = ChatSession::new(ctx, sampler, template);
    chat.system("You are terse.");
    println!("build: {}", llamacpp::build_info::VARIANT);
    for question in ["Hello, who are you?", "And what can you do?"] {
        let mut streamed = String::new();
        let reply = chat.ask(question, 16, |piece| streamed.push_str(piece))?;
        if reply != streamed || reply.is_empty() {
            return Err(format!("reply {reply:?} differs from the streamed {streamed:?}").into());
        }
        let tokens = model.vocab().tokenize(&reply, false, false)?;
        println!("> {question}\n{reply:?} ({} tokens)", tokens.len());
    }
    if chat.messages().len() != 5 {
        return Err(format!("{} messages after two turns", chat.messages().len()).into());
    }
    println!("ok");
    Ok(())
}
