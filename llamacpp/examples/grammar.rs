//! JSON-constrained output: a JSON schema converted to a GBNF grammar (or a
//! hand-written grammar with `--gbnf`) steers sampling.
//!
//! `cargo run --example grammar -- [-m MODEL] [--schema FILE | --gbnf]`

#[path = "common/mod.rs"]
mod common;

use llamacpp::generate::{Generator, StopAt};
use llamacpp::grammar::json_schema_to_grammar;
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};

/// The default schema: {"name": "...", "age": N, "languages": [...]}.
const SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 1, "maximum": 120},
    "languages": {"type": "array", "items": {"enum": ["en", "fr", "de", "ja"]}, "maxItems": 3}
  },
  "required": ["name", "age"],
  "additionalProperties": false
}"#;

/// The hand-written alternative (`--gbnf`): {"name": "...", "age": N}.
const GBNF: &str = r#"
root   ::= "{\"name\": \"" name "\", \"age\": " age "}"
name   ::= [a-z]{1,8}
age    ::= [1-9] [0-9]?
"#;

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let grammar = if std::env::args().any(|a| a == "--gbnf") {
        GBNF.to_string()
    } else {
        let schema = match common::arg("--schema") {
            Some(path) => std::fs::read_to_string(path)?,
            None => SCHEMA.to_string(),
        };
        let gbnf = json_schema_to_grammar(&schema)?;
        eprintln!("grammar from the schema:\n{gbnf}");
        gbnf
    };
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(1024))?;
    let mut sampler = SamplerChain::builder(model.vocab())
        .grammar(&grammar, "root")
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
            max_tokens: 256,
            stop_strings: vec![],
        },
    )?;
    let mut text = String::new();
    while let Some(piece) = generator.next_piece() {
        match piece {
            Ok(p) => text.push_str(&p),
            // A complete grammar admits only end-of-generation; a vocabulary
            // without one ends here.
            Err(e) => {
                eprintln!("stopped: {e}");
                break;
            }
        }
    }
    println!("{text}");
    Ok(())
}
