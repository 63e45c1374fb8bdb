//! JSON-constrained output with a GBNF grammar: `cargo run --example grammar -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llama::generate::{Generator, StopAt};
use llama::{Context, ContextParams, Model, ModelParams, SamplerChain};

/// A small JSON object grammar: {"name": "...", "age": N}.
const GRAMMAR: &str = r#"
root   ::= "{\"name\": \"" name "\", \"age\": " age "}"
name   ::= [a-z]{1,8}
age    ::= [1-9] [0-9]?
"#;

fn main() -> llama::Result<()> {
    llama::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llama_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(512))?;
    let mut sampler = SamplerChain::builder(model.vocab())
        .grammar(GRAMMAR, "root")
        .top_k(20)
        .dist(3)
        .build()?;
    let prompt = model
        .vocab()
        .tokenize("Describe a person as JSON:", true, false)?;
    let mut generator = Generator::new(
        &mut ctx,
        &mut sampler,
        &prompt,
        0,
        StopAt {
            max_tokens: 48,
            stop_strings: vec!["}".into()],
        },
    )?;
    let mut text = String::new();
    while let Some(piece) = generator.next_piece() {
        match piece {
            Ok(p) => text.push_str(&p),
            Err(e) => {
                eprintln!("stopped: {e}");
                break;
            }
        }
    }
    println!("{text}}}");
    Ok(())
}
