//! ContextParams: range checks before llama.cpp sees the values, RoPE/YaRN
//! settings, and `n_outputs_max` enforced per decode instead of aborting.

mod common;

use llamacpp::{Batch, Context, ContextParams, Error, Model};

#[test]
fn context_params_are_range_checked() {
    let model = common::dense();
    let base = || ContextParams::default().n_ctx(64);
    for bad in [
        base().n_threads(0),
        base().n_threads_batch(-1),
        base().rope_freq_base(f32::NAN),
        base().rope_freq_scale(-1.0),
        base().yarn_ext_factor(f32::INFINITY),
        base().yarn_beta_fast(f32::NAN),
        base().yarn_attn_factor(f32::NEG_INFINITY),
        base().n_seq_max(0),
        base().n_seq_max(257),
    ] {
        assert!(
            matches!(Context::new(&model, bad), Err(Error::OutOfRange { .. })),
            "accepted"
        );
    }
    // YaRN to twice the training context: loads and decodes.
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(8192)
            .rope_scaling(llamacpp::RopeScaling::Yarn)
            .rope_freq_scale(0.5)
            .yarn_orig_ctx(4096)
            .attention_type(llamacpp::AttentionType::Causal),
    )
    .unwrap();
    assert!(
        common::prompt_logits(&mut ctx)
            .iter()
            .all(|v| v.is_finite())
    );
}

/// Logits of every output of one decode of `p`, with outputs at every `every`-th token and the last.
fn sparse_outputs(
    model: &Model,
    p: &[llamacpp::Token],
    every: usize,
    cp: ContextParams,
) -> llamacpp::Result<Vec<f32>> {
    let mut ctx = Context::new(model, cp.n_ctx(128).n_threads(2))?;
    let mut b = Batch::new(p.len(), 1)?;
    for (i, t) in p.iter().enumerate() {
        b.add(*t, i as i32, &[0], i % every == 0 || i + 1 == p.len())?;
    }
    ctx.decode(&mut b)?;
    let mut out = Vec::new();
    for &i in ctx.output_indices() {
        out.extend_from_slice(ctx.logits(i)?);
    }
    Ok(out)
}

#[test]
fn n_outputs_max_shrinks_buffers_and_is_enforced_without_aborting() {
    for model in [common::dense(), common::qwen3next()] {
        let p = model
            .vocab()
            .tokenize(
                "The quick brown fox jumps over the lazy dog again",
                true,
                false,
            )
            .unwrap();
        assert!(p.len() > 8);
        let every = p.len().div_ceil(3);
        let base = sparse_outputs(&model, &p, every, ContextParams::default()).unwrap();
        for cp in [
            ContextParams::default().n_outputs_max(4),
            ContextParams::default().n_outputs_max(4).n_ubatch(4),
        ] {
            let got = sparse_outputs(&model, &p, every, cp).unwrap();
            let e = llamacpp_ggml::nmse(&got, &base);
            assert!(e < 1e-6, "nmse {e}");
        }
        // More outputs than n_outputs_max: llama.cpp would fail GGML_ASSERT in output_reserve.
        let r = sparse_outputs(&model, &p, 1, ContextParams::default().n_outputs_max(4));
        assert!(matches!(r, Err(Error::OutOfRange { .. })), "{r:?}");
        // Below n_seq_max: the context constructor would assert.
        let r = Context::new(
            &model,
            ContextParams::default().n_seq_max(4).n_outputs_max(2),
        );
        assert!(matches!(r, Err(Error::OutOfRange { .. })));
    }
}
