//! Save a context's state after a prompt and resume from it in a new context:
//! `cargo run --example state -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llamacpp::{Batch, Context, ContextParams, Model, ModelParams};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::Qwen3NextTiny),
        ModelParams::default(),
    )?;
    let vocab = model.vocab();
    let prompt = vocab.tokenize(
        "A long shared system prompt that we do not want to decode twice.",
        true,
        false,
    )?;
    let file = std::env::temp_dir().join("llama-rs-example-state.bin");

    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(256))?;
    ctx.decode(&mut Batch::from_tokens(&prompt, 0, 0)?)?;
    let before = ctx.logits(-1)?.to_vec();
    ctx.save_state_file(&file, &prompt)?;
    println!(
        "saved {} tokens of state to {}",
        prompt.len(),
        file.display()
    );

    let mut resumed = Context::new(&model, ContextParams::default().n_ctx(256))?;
    let tokens = resumed.load_state_file(&file, 4096)?;
    // The saved logits come back with the state: sampling can continue at once.
    let mut b = Batch::new(1, 1)?;
    let next = vocab.token(llama_argmax(&before))?;
    b.add(next, tokens.len() as i32, &[0], true)?;
    resumed.decode(&mut b)?;
    println!(
        "resumed after {} tokens; next token {:?}",
        tokens.len(),
        vocab.piece(next, false)?
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}

fn llama_argmax(v: &[f32]) -> i32 {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best }) as i32
}
