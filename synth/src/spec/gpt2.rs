//! `gpt2`: learned absolute positions (a `position_embd` table with one row per position
//! of the training context) and LayerNorm with biases.
//!
//! Source: `src/models/gpt2.cpp`. The architecture that tests positions past the
//! training context: the table has `context_length` rows, and ggml's `get_rows` asserts
//! on a position past them.

use super::{Builder, ModelSpec, SynthOptions, TokenizerStyle, blk};
use crate::error::Result;
use crate::init::Init;

/// Hyperparameters of a GPT-2.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpt2Params {
    /// Hidden size.
    pub n_embd: u64,
    /// Layers.
    pub n_layer: u32,
    /// Attention heads (no grouped-query attention in GPT-2).
    pub n_head: u64,
    /// FFN size.
    pub n_ff: u64,
    /// Training context length: the rows of the position table.
    pub n_ctx: u64,
    /// LayerNorm epsilon.
    pub norm_eps: f32,
    /// Vocabulary size.
    pub n_vocab: u32,
}

impl Gpt2Params {
    /// A few-MB GPT-2 with a short (256-position) table.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            n_embd: 256,
            n_layer: 2,
            n_head: 4,
            n_ff: 1024,
            n_ctx: 256,
            norm_eps: 1e-5,
            n_vocab: 1024,
        }
    }
}

/// A bias vector: small values around 0.
fn bias(b: &mut Builder, name: String, n: u64) {
    b.tensor(name, &[n], Init::Normal { std: 0.02 });
}

/// Describe a GPT-2 model.
pub(crate) fn build(p: &Gpt2Params, opts: &SynthOptions) -> Result<ModelSpec> {
    let tok = TokenizerStyle {
        pre: "gpt-2",
        add_bos: false,
    };
    let mut b = Builder::new("gpt2", opts, p.n_vocab, &tok)?;
    let n_layer = opts.layers.unwrap_or(p.n_layer);
    let e = p.n_embd;
    b.u32("context_length", p.n_ctx)?;
    b.u32("embedding_length", e)?;
    b.u32("block_count", u64::from(n_layer))?;
    b.u32("feed_forward_length", p.n_ff)?;
    b.u32("attention.head_count", p.n_head)?;
    b.f32("attention.layer_norm_epsilon", p.norm_eps);
    b.embeddings(e);
    bias(&mut b, "output_norm.bias".into(), e);
    b.tensor(
        "position_embd.weight".into(),
        &[e, p.n_ctx],
        Init::Normal { std: 0.1 },
    );
    for il in 0..n_layer {
        b.norm(blk(il, "attn_norm.weight"), e);
        bias(&mut b, blk(il, "attn_norm.bias"), e);
        b.matrix(blk(il, "attn_qkv.weight"), &[e, 3 * e]);
        bias(&mut b, blk(il, "attn_qkv.bias"), 3 * e);
        b.matrix(blk(il, "attn_output.weight"), &[e, e]);
        bias(&mut b, blk(il, "attn_output.bias"), e);
        b.norm(blk(il, "ffn_norm.weight"), e);
        bias(&mut b, blk(il, "ffn_norm.bias"), e);
        b.matrix(blk(il, "ffn_up.weight"), &[e, p.n_ff]);
        bias(&mut b, blk(il, "ffn_up.bias"), p.n_ff);
        b.matrix(blk(il, "ffn_down.weight"), &[p.n_ff, e]);
        bias(&mut b, blk(il, "ffn_down.bias"), e);
    }
    Ok(b.finish(n_layer, e))
}
