//! `llama`: a dense Llama with grouped-query attention.
//!
//! Source: `src/models/llama.cpp`. For this architecture llama.cpp requires
//! `rope.dimension_count` to equal the head size; `attention.head_count_kv`
//! is set because its default is `n_head` (no GQA).

use super::{Builder, ModelSpec, SynthOptions, TokenizerStyle, blk};
use crate::error::Result;

/// Hyperparameters of a dense Llama.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaParams {
    /// Hidden size.
    pub n_embd: u64,
    /// Layers.
    pub n_layer: u32,
    /// Query heads.
    pub n_head: u64,
    /// Key/value heads.
    pub n_head_kv: u64,
    /// FFN size.
    pub n_ff: u64,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// Training context length.
    pub n_ctx: u64,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Vocabulary size.
    pub n_vocab: u32,
}

impl LlamaParams {
    /// A few-MB Llama-3-like model: 8 query heads sharing 2 key/value heads.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            n_embd: 256,
            n_layer: 2,
            n_head: 8,
            n_head_kv: 2,
            n_ff: 512,
            rope_base: 500_000.0,
            n_ctx: 4096,
            rms_eps: 1e-5,
            n_vocab: 1024,
        }
    }

    /// Llama-3-8B's shapes (its `config.json`): 32 layers, hidden 4096, 32 query and 8
    /// key/value heads of 128, FFN 14336, vocabulary 128256: a real-width dense model, the
    /// baseline every MoE speed-up is checked against.
    #[must_use]
    pub fn llama3_8b() -> Self {
        Self {
            n_embd: 4096,
            n_layer: 32,
            n_head: 32,
            n_head_kv: 8,
            n_ff: 14336,
            rope_base: 500_000.0,
            n_ctx: 8192,
            rms_eps: 1e-5,
            n_vocab: 128_256,
        }
    }

    /// Head size.
    #[must_use]
    pub fn head_dim(&self) -> u64 {
        self.n_embd / self.n_head
    }
}

/// Describe a llama model.
pub(crate) fn build(p: &LlamaParams, opts: &SynthOptions) -> Result<ModelSpec> {
    let tok = TokenizerStyle {
        pre: "llama-bpe",
        add_bos: true,
    };
    let mut b = Builder::new("llama", opts, p.n_vocab, &tok)?;
    let n_layer = opts.layers.unwrap_or(p.n_layer);
    let hd = p.head_dim();
    b.u32("context_length", p.n_ctx)?;
    b.u32("embedding_length", p.n_embd)?;
    b.u32("block_count", u64::from(n_layer))?;
    b.u32("feed_forward_length", p.n_ff)?;
    b.u32("attention.head_count", p.n_head)?;
    b.u32("attention.head_count_kv", p.n_head_kv)?;
    b.u32("attention.key_length", hd)?;
    b.u32("attention.value_length", hd)?;
    b.f32("attention.layer_norm_rms_epsilon", p.rms_eps);
    b.f32("rope.freq_base", p.rope_base);
    b.u32("rope.dimension_count", hd)?;
    b.embeddings(p.n_embd);
    for il in 0..n_layer {
        b.norm(blk(il, "attn_norm.weight"), p.n_embd);
        b.matrix(blk(il, "attn_q.weight"), &[p.n_embd, p.n_head * hd]);
        b.matrix(blk(il, "attn_k.weight"), &[p.n_embd, p.n_head_kv * hd]);
        b.matrix(blk(il, "attn_v.weight"), &[p.n_embd, p.n_head_kv * hd]);
        b.matrix(blk(il, "attn_output.weight"), &[p.n_head * hd, p.n_embd]);
        b.norm(blk(il, "ffn_norm.weight"), p.n_embd);
        b.matrix(blk(il, "ffn_gate.weight"), &[p.n_embd, p.n_ff]);
        b.matrix(blk(il, "ffn_up.weight"), &[p.n_embd, p.n_ff]);
        b.matrix(blk(il, "ffn_down.weight"), &[p.n_ff, p.n_embd]);
    }
    Ok(b.finish(n_layer, p.n_embd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Preset;

    #[test]
    fn llama3_8b_matches_the_published_parameter_count() {
        let spec = ModelSpec::from_options(&SynthOptions::new(Preset::Llama3_8b)).unwrap();
        // Meta-Llama-3-8B has 8,030,261,248 parameters (untied embeddings and output)
        assert_eq!(spec.n_params(), 8_030_261_248);
        assert_eq!(spec.n_layer, 32);
        assert_eq!(
            spec.tensor("blk.31.attn_k.weight").unwrap().shape,
            vec![4096, 1024]
        );
        assert_eq!(
            spec.tensor("blk.0.ffn_down.weight").unwrap().shape,
            vec![14336, 4096]
        );
        assert_eq!(
            spec.metadata.get_u32("llama.rope.dimension_count"),
            Some(128)
        );
    }
}
