//! Mean-pooled sentence embeddings and their cosine similarity:
//! `cargo run --example embeddings -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llamacpp::{Batch, Context, ContextParams, Model, ModelParams, Pooling};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let texts = [
        "the cat sat on the mat",
        "a cat was sitting on a mat",
        "quarterly revenue grew",
    ];
    let mut embs = Vec::new();
    for t in texts {
        let mut ctx = Context::new(
            &model,
            ContextParams::default()
                .n_ctx(256)
                .embeddings(true)
                .pooling(Pooling::Mean),
        )?;
        let toks = model.vocab().tokenize(t, true, false)?;
        ctx.decode(&mut Batch::from_tokens(&toks, 0, 0)?)?;
        let e = ctx.seq_embeddings(0)?.to_vec();
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        embs.push(e.into_iter().map(|x| x / norm).collect::<Vec<f32>>());
    }
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            let cos: f32 = embs[i].iter().zip(&embs[j]).map(|(a, b)| a * b).sum();
            println!("cos({:?}, {:?}) = {cos:.4}", texts[i], texts[j]);
        }
    }
    Ok(())
}
