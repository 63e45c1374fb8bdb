//! `qwen3moe`: Qwen3 MoE. Full attention with query/key norms in every layer,
//! routed experts (no shared expert), separate gate/up expert tensors (the
//! pinned loader has no fused form for this architecture).
//!
//! Source: `src/models/qwen3moe.cpp`. `attention.key_length`/`value_length`
//! are set because the head size differs from `n_embd / n_head`;
//! `expert_feed_forward_length` because its default is `n_ff / n_expert_used`.

use super::blocks::{self, Attention, Experts};
use super::{Builder, ModelSpec, SynthOptions, TokenizerStyle, blk};
use crate::error::Result;

/// Hyperparameters of a Qwen3 MoE model.
#[derive(Clone, Debug, PartialEq)]
pub struct Qwen3MoeParams {
    /// Hidden size.
    pub n_embd: u64,
    /// Layers.
    pub n_layer: u32,
    /// Query heads.
    pub n_head: u64,
    /// Key/value heads.
    pub n_head_kv: u64,
    /// Head size.
    pub head_dim: u64,
    /// Dense FFN size (stored, unused by the graph).
    pub n_ff: u64,
    /// Routed experts.
    pub n_expert: u64,
    /// Experts used per token.
    pub n_expert_used: u64,
    /// Expert FFN size.
    pub ff_exp: u64,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// Training context length.
    pub n_ctx: u64,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Vocabulary size.
    pub n_vocab: u32,
}

impl Qwen3MoeParams {
    /// Qwen3-30B-A3B's shapes (its `config.json`): 48 layers, hidden 2048, 32 query and 4
    /// key/value heads of 128, 128 experts of FFN 768, top-8, vocabulary 151936.
    #[must_use]
    pub fn qwen3moe_30b_a3b() -> Self {
        Self {
            n_embd: 2048,
            n_layer: 48,
            n_head: 32,
            n_head_kv: 4,
            head_dim: 128,
            n_ff: 6144,
            n_expert: 128,
            n_expert_used: 8,
            ff_exp: 768,
            rope_base: 1_000_000.0,
            n_ctx: 40960,
            rms_eps: 1e-6,
            n_vocab: 151_936,
        }
    }

    /// A few-MB model shaped like Qwen3-30B-A3B (head 2× wider than n_embd / n_head).
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            n_embd: 256,
            n_layer: 2,
            n_head: 8,
            n_head_kv: 2,
            head_dim: 64,
            n_ff: 768,
            n_expert: 16,
            n_expert_used: 4,
            ff_exp: 128,
            rope_base: 1_000_000.0,
            n_ctx: 4096,
            rms_eps: 1e-6,
            n_vocab: 1024,
        }
    }
}

/// Describe a qwen3moe model.
pub(crate) fn build(p: &Qwen3MoeParams, opts: &SynthOptions) -> Result<ModelSpec> {
    let tok = TokenizerStyle {
        pre: "qwen2",
        add_bos: false,
    };
    let mut b = Builder::new("qwen3moe", opts, p.n_vocab, &tok)?;
    let n_layer = opts.layers.unwrap_or(p.n_layer);
    b.u32("context_length", p.n_ctx)?;
    b.u32("embedding_length", p.n_embd)?;
    b.u32("block_count", u64::from(n_layer))?;
    b.u32("feed_forward_length", p.n_ff)?;
    b.u32("attention.head_count", p.n_head)?;
    b.u32("attention.head_count_kv", p.n_head_kv)?;
    b.u32("attention.key_length", p.head_dim)?;
    b.u32("attention.value_length", p.head_dim)?;
    b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);
    b.f32("rope.freq_base", p.rope_base);
    b.u32("rope.dimension_count", p.head_dim)?;
    b.u32("expert_count", p.n_expert)?;
    b.u32("expert_used_count", p.n_expert_used)?;
    b.u32("expert_feed_forward_length", p.ff_exp)?;
    b.embeddings(p.n_embd);
    let attn = Attention {
        n_embd: p.n_embd,
        n_head: p.n_head,
        n_head_kv: p.n_head_kv,
        head_dim: p.head_dim,
        gated: false,
    };
    let experts = Experts {
        n_embd: p.n_embd,
        n_expert: p.n_expert,
        ff_exp: p.ff_exp,
        fused: false,
    };
    for il in 0..n_layer {
        b.norm(blk(il, "attn_norm.weight"), p.n_embd);
        blocks::attention_qk_norm(&mut b, il, &attn);
        b.norm(blk(il, "ffn_norm.weight"), p.n_embd);
        blocks::routed_experts(&mut b, il, &experts);
    }
    Ok(b.finish(n_layer, p.n_embd))
}
