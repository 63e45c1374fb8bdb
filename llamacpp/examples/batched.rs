//! Several sequences decoded in one batch: `cargo run --example batched -- [-m MODEL]`.

#[path = "common/mod.rs"]
mod common;

use llamacpp::{Batch, Context, ContextParams, Model, ModelParams, SamplerChain, Utf8Decoder};

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let vocab = model.vocab();
    let prompts = ["The sky is", "My favourite food is", "In the year 2100"];
    let n_seq = prompts.len();
    let mut ctx = Context::new(
        &model,
        ContextParams::default().n_ctx(1024).n_seq_max(n_seq as u32),
    )?;
    let seqs: Vec<_> = prompts
        .iter()
        .map(|p| vocab.tokenize(p, true, false))
        .collect::<llamacpp::Result<_>>()?;
    let mut batch = Batch::new(seqs.iter().map(Vec::len).sum::<usize>().max(n_seq), 1)?;
    let mut last = vec![0i32; n_seq];
    let mut pos: Vec<i32> = seqs.iter().map(|s| s.len() as i32).collect();
    for (s, toks) in seqs.iter().enumerate() {
        for (i, &t) in toks.iter().enumerate() {
            batch.add(t, i as i32, &[s as i32], i + 1 == toks.len())?;
        }
        last[s] = batch.len() as i32 - 1;
    }
    ctx.decode(&mut batch)?;
    let mut samplers: Vec<_> = (0..n_seq)
        .map(|s| {
            SamplerChain::builder(vocab)
                .top_k(20)
                .dist(s as u32)
                .build()
        })
        .collect::<llamacpp::Result<_>>()?;
    let mut out = vec![String::new(); n_seq];
    let mut decoders = vec![Utf8Decoder::default(); n_seq];
    for _ in 0..16 {
        batch.clear();
        for s in 0..n_seq {
            let t = samplers[s].sample(&mut ctx, last[s])?;
            out[s].push_str(&decoders[s].push(&vocab.piece_bytes(t, false)?));
            batch.add(t, pos[s], &[s as i32], true)?;
            last[s] = batch.len() as i32 - 1;
            pos[s] += 1;
        }
        ctx.decode(&mut batch)?;
    }
    for (p, o) in prompts.iter().zip(out) {
        println!("{p}{o}");
    }
    Ok(())
}
