//! Helpers for the tests of the models `llamacpp-synth` writes (`synth_*.rs`): load on the
//! CPU with tensor checks, greedy decoding with finite logits, distinct tokens.

use std::path::Path;

use llamacpp::{Context, ContextParams, Model, ModelParams, Token};

/// Loads `path` on the CPU with llama.cpp's tensor checks on.
pub fn load_cpu(path: &Path) -> llamacpp::Result<Model> {
    llamacpp::backend::set_logging(false);
    Model::load(
        path,
        ModelParams::default().n_gpu_layers(0).check_tensors(true),
    )
}

/// Decodes `prompt`, then `steps` greedy tokens (the highest logit, the last one on a tie);
/// asserts that every logit is finite.
pub fn greedy(model: &Model, prompt: &[Token], steps: usize) -> Vec<Token> {
    // One thread: tests run in parallel, and spinning thread pools would contend.
    let params = ContextParams::default()
        .n_ctx(256)
        .n_batch(256)
        .n_ubatch(256)
        .n_threads(1);
    let mut ctx = Context::new(model, params).expect("create a context");
    let vocab = model.vocab();
    let mut next = prompt.to_vec();
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        ctx.decode_tokens(&next).expect("decode");
        let logits = ctx.logits(-1).expect("logits of the last token");
        assert!(logits.iter().all(|v| v.is_finite()), "non-finite logits");
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as i32)
            .expect("non-empty vocabulary");
        let best = vocab.token(best).expect("an id of the vocabulary");
        out.push(best);
        next = vec![best];
    }
    out
}

/// Number of distinct tokens.
pub fn distinct(tokens: &[Token]) -> usize {
    let mut v = tokens.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}
