//! `qwen35moe`: Qwen3.5 MoE. The same hybrid as Qwen3-Next, but linear
//! attention has separate `ssm_beta` and `ssm_alpha` projections (no `ssm_ba`,
//! no legacy `ssm_in`), and full attention uses interleaved multi-section RoPE,
//! so `rope.dimension_sections` (4 values) is required.
//!
//! Source: `src/models/qwen35moe.cpp`; the other keys are those of
//! [`super::qwen3next`].

use super::qwen3next::{self, Qwen3NextParams};
use super::{Builder, ModelSpec, SynthOptions, TokenizerStyle, blk};
use crate::error::Result;
use llamacpp_ggml::gguf::MetaValue;

/// Hyperparameters of a Qwen3.5 MoE model.
#[derive(Clone, Debug, PartialEq)]
pub struct Qwen35MoeParams {
    /// Everything Qwen3-Next has.
    pub base: Qwen3NextParams,
    /// M-RoPE sections (pairs of rotary dimensions per section; they add up
    /// to `rope_dims / 2`).
    pub rope_sections: [i32; 4],
}

impl Qwen35MoeParams {
    /// A few-MB model with the structure of Qwen3.5-35B-A3B (whose sections
    /// are [11, 11, 10, 0] for 64 rotary dimensions).
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            base: Qwen3NextParams {
                n_ctx: 8192,
                ..Qwen3NextParams::tiny()
            },
            rope_sections: [3, 3, 2, 0],
        }
    }
}

/// Describe a qwen35moe model.
pub(crate) fn build(p: &Qwen35MoeParams, opts: &SynthOptions) -> Result<ModelSpec> {
    let q = &p.base;
    let tok = TokenizerStyle {
        pre: "qwen35",
        add_bos: false,
    };
    let mut b = Builder::new("qwen35moe", opts, q.n_vocab, &tok)?;
    let n_layer = opts.layers.unwrap_or(q.n_layer);
    qwen3next::hybrid_keys(&mut b, q, n_layer)?;
    b.set(
        "rope.dimension_sections",
        MetaValue::ArrI32(p.rope_sections.to_vec()),
    );
    b.embeddings(q.n_embd);
    for il in 0..n_layer {
        b.norm(blk(il, "attn_norm.weight"), q.n_embd);
        b.norm(blk(il, "post_attention_norm.weight"), q.n_embd);
        if q.is_full_attention(il) {
            qwen3next::hybrid_attention(&mut b, il, q);
        } else {
            b.matrix(blk(il, "attn_qkv.weight"), &[q.n_embd, q.conv_dim()]);
            b.matrix(blk(il, "attn_gate.weight"), &[q.n_embd, q.value_dim()]);
            b.matrix(blk(il, "ssm_beta.weight"), &[q.n_embd, q.ssm_v_heads]);
            b.matrix(blk(il, "ssm_alpha.weight"), &[q.n_embd, q.ssm_v_heads]);
            qwen3next::linear_attention_common(&mut b, il, q);
        }
        qwen3next::hybrid_ffn(&mut b, il, q, opts.fused_experts);
    }
    Ok(b.finish(n_layer, q.n_embd))
}
