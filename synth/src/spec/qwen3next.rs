//! `qwen3next`: Qwen3-Next, a hybrid of gated-delta-net linear attention and
//! gated full attention (every `full_attention_interval`-th layer), with routed
//! plus shared experts in every layer.
//!
//! Source: `src/models/qwen3next.cpp` of the pinned llama.cpp. Keys set on
//! purpose because their defaults are wrong for Qwen3-Next:
//! `attention.key_length`/`value_length` (default `n_embd / n_head` = 128, the
//! real head is 256), `rope.dimension_count` (default = head size; the real
//! rotary part is 64), `rope.freq_base` (default 10000),
//! `attention.head_count_kv` (default = `n_head`), `expert_feed_forward_length`
//! (default `n_ff / n_expert_used`), `expert_shared_feed_forward_length`
//! (default `n_ff`), `full_attention_interval` (default 4, set anyway), and
//! `vocab_size` (needed by `no_vocab`). The `ssm.*` keys, `context_length`,
//! `embedding_length`, `block_count` and the RMS epsilon are required.

use super::blocks::{self, Attention, Experts};
use super::{Builder, LinearLayout, ModelSpec, SynthOptions, TokenizerStyle, blk};
use crate::error::Result;
use crate::init::Init;

/// Hyperparameters of a Qwen3-Next model.
#[derive(Clone, Debug, PartialEq)]
pub struct Qwen3NextParams {
    /// Hidden size.
    pub n_embd: u64,
    /// Layers.
    pub n_layer: u32,
    /// Every `full_attention_interval`-th layer (1-based) is full attention.
    pub full_attention_interval: u32,
    /// Query heads of the full-attention layers.
    pub n_head: u64,
    /// Key/value heads of the full-attention layers.
    pub n_head_kv: u64,
    /// Head size of the full-attention layers.
    pub head_dim: u64,
    /// Rotary dimensions (partial RoPE).
    pub rope_dims: u64,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// Training context length.
    pub n_ctx: u64,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Linear attention: key heads (`ssm.group_count`).
    pub ssm_k_heads: u64,
    /// Linear attention: value heads (`ssm.time_step_rank`).
    pub ssm_v_heads: u64,
    /// Linear attention: head size (`ssm.state_size`).
    pub ssm_head_dim: u64,
    /// Linear attention: causal conv kernel size.
    pub conv_kernel: u64,
    /// Routed experts.
    pub n_expert: u64,
    /// Experts used per token.
    pub n_expert_used: u64,
    /// Routed expert FFN size.
    pub ff_exp: u64,
    /// Shared expert FFN size.
    pub ff_shexp: u64,
    /// Dense FFN size (`feed_forward_length`; unused by the graph, stored as the
    /// real model does).
    pub n_ff: u64,
    /// Vocabulary size.
    pub n_vocab: u32,
}

impl Qwen3NextParams {
    /// Qwen3-Next-80B-A3B.
    #[must_use]
    pub fn qwen3next_80b_a3b() -> Self {
        Self {
            n_embd: 2048,
            n_layer: 48,
            full_attention_interval: 4,
            n_head: 16,
            n_head_kv: 2,
            head_dim: 256,
            rope_dims: 64,
            rope_base: 10_000_000.0,
            n_ctx: 262_144,
            rms_eps: 1e-6,
            ssm_k_heads: 16,
            ssm_v_heads: 32,
            ssm_head_dim: 128,
            conv_kernel: 4,
            n_expert: 512,
            n_expert_used: 10,
            ff_exp: 512,
            ff_shexp: 512,
            n_ff: 5120,
            n_vocab: 151_936,
        }
    }

    /// The same structure at a few MB: 4 layers (3 linear, 1 full attention),
    /// 2 value heads per key head, 16 experts of which 4 are used.
    #[must_use]
    pub fn tiny() -> Self {
        Self {
            n_embd: 256,
            n_layer: 4,
            full_attention_interval: 4,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            rope_dims: 16,
            rope_base: 10_000_000.0,
            n_ctx: 4096,
            rms_eps: 1e-6,
            ssm_k_heads: 4,
            ssm_v_heads: 8,
            ssm_head_dim: 32,
            conv_kernel: 4,
            n_expert: 16,
            n_expert_used: 4,
            ff_exp: 64,
            ff_shexp: 64,
            n_ff: 512,
            n_vocab: 1024,
        }
    }

    /// Whether layer `il` is a full-attention layer (else linear attention),
    /// as llama.cpp derives it from `full_attention_interval`.
    #[must_use]
    pub fn is_full_attention(&self, il: u32) -> bool {
        (il + 1).is_multiple_of(self.full_attention_interval)
    }

    /// Key dimension of a linear-attention layer.
    #[must_use]
    pub fn key_dim(&self) -> u64 {
        self.ssm_k_heads * self.ssm_head_dim
    }

    /// Value dimension of a linear-attention layer (`ssm.inner_size`).
    #[must_use]
    pub fn value_dim(&self) -> u64 {
        self.ssm_v_heads * self.ssm_head_dim
    }

    /// Channels of the causal convolution: query, key and value.
    #[must_use]
    pub fn conv_dim(&self) -> u64 {
        2 * self.key_dim() + self.value_dim()
    }
}

/// Keys shared by qwen3next and qwen35moe.
pub(crate) fn hybrid_keys(b: &mut Builder, p: &Qwen3NextParams, n_layer: u32) -> Result<()> {
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
    b.u32("rope.dimension_count", p.rope_dims)?;
    b.u32("expert_count", p.n_expert)?;
    b.u32("expert_used_count", p.n_expert_used)?;
    b.u32("expert_feed_forward_length", p.ff_exp)?;
    b.u32("expert_shared_feed_forward_length", p.ff_shexp)?;
    b.u32("ssm.conv_kernel", p.conv_kernel)?;
    b.u32("ssm.state_size", p.ssm_head_dim)?;
    b.u32("ssm.group_count", p.ssm_k_heads)?;
    b.u32("ssm.time_step_rank", p.ssm_v_heads)?;
    b.u32("ssm.inner_size", p.value_dim())?;
    b.u32(
        "full_attention_interval",
        u64::from(p.full_attention_interval),
    )?;
    Ok(())
}

/// Tensors both hybrid architectures share in a linear-attention layer:
/// the conv kernel, dt bias, decay rates, the gated norm and the output.
pub(crate) fn linear_attention_common(b: &mut Builder, il: u32, p: &Qwen3NextParams) {
    b.tensor(
        blk(il, "ssm_conv1d.weight"),
        &[p.conv_kernel, p.conv_dim()],
        Init::fan_in(p.conv_kernel),
    );
    b.tensor(
        blk(il, "ssm_dt.bias"),
        &[p.ssm_v_heads],
        blocks::SSM_DT_BIAS,
    );
    b.tensor(blk(il, "ssm_a"), &[p.ssm_v_heads], blocks::SSM_A);
    b.norm(blk(il, "ssm_norm.weight"), p.ssm_head_dim);
    b.matrix(blk(il, "ssm_out.weight"), &[p.value_dim(), p.n_embd]);
}

/// Full attention, routed experts and shared expert: what a hybrid layer has
/// besides its attention-type specific tensors.
pub(crate) fn hybrid_ffn(b: &mut Builder, il: u32, p: &Qwen3NextParams, fused: bool) {
    let e = Experts {
        n_embd: p.n_embd,
        n_expert: p.n_expert,
        ff_exp: p.ff_exp,
        fused,
    };
    blocks::routed_experts(b, il, &e);
    blocks::shared_expert(b, il, p.n_embd, p.ff_shexp);
}

/// The gated full-attention tensors of a hybrid layer.
pub(crate) fn hybrid_attention(b: &mut Builder, il: u32, p: &Qwen3NextParams) {
    let a = Attention {
        n_embd: p.n_embd,
        n_head: p.n_head,
        n_head_kv: p.n_head_kv,
        head_dim: p.head_dim,
        gated: true,
    };
    blocks::attention_qk_norm(b, il, &a);
}

/// Describe a qwen3next model.
pub(crate) fn build(p: &Qwen3NextParams, opts: &SynthOptions) -> Result<ModelSpec> {
    let tok = TokenizerStyle {
        pre: "qwen2",
        add_bos: false,
    };
    let mut b = Builder::new("qwen3next", opts, p.n_vocab, &tok)?;
    let n_layer = opts.layers.unwrap_or(p.n_layer);
    // The MTP block is one more block after the trunk.
    hybrid_keys(&mut b, p, n_layer + u32::from(opts.mtp))?;
    if opts.mtp {
        b.u32("nextn_predict_layers", 1)?;
    }
    b.embeddings(p.n_embd);
    for il in 0..n_layer {
        b.norm(blk(il, "attn_norm.weight"), p.n_embd);
        b.norm(blk(il, "post_attention_norm.weight"), p.n_embd);
        if p.is_full_attention(il) {
            hybrid_attention(&mut b, il, p);
        } else {
            match opts.layout {
                LinearLayout::Current => {
                    b.matrix(blk(il, "attn_qkv.weight"), &[p.n_embd, p.conv_dim()]);
                    b.matrix(blk(il, "attn_gate.weight"), &[p.n_embd, p.value_dim()]);
                }
                LinearLayout::Legacy => {
                    b.matrix(
                        blk(il, "ssm_in.weight"),
                        &[p.n_embd, p.conv_dim() + p.value_dim()],
                    );
                }
            }
            // beta and alpha for every value head, grouped per key head
            b.matrix(blk(il, "ssm_ba.weight"), &[p.n_embd, 2 * p.ssm_v_heads]);
            linear_attention_common(&mut b, il, p);
        }
        hybrid_ffn(&mut b, il, p, opts.fused_experts);
    }
    if opts.mtp {
        mtp_block(&mut b, n_layer, p, opts.fused_experts);
    }
    Ok(b.finish(n_layer + u32::from(opts.mtp), p.n_embd))
}

/// The multi-token-prediction (NextN) block, stored as block `il` right after the trunk
/// (llama.cpp counts it in `block_count` and takes the last `nextn_predict_layers` blocks
/// as MTP blocks). It is a full-attention layer whatever `full_attention_interval` says,
/// plus the projection of `[norm(token embedding), norm(hidden state)]` back to `n_embd`.
/// The optional own embedding and LM head are left out: llama.cpp then uses the trunk's.
fn mtp_block(b: &mut Builder, il: u32, p: &Qwen3NextParams, fused: bool) {
    b.norm(blk(il, "attn_norm.weight"), p.n_embd);
    b.norm(blk(il, "post_attention_norm.weight"), p.n_embd);
    hybrid_attention(b, il, p);
    hybrid_ffn(b, il, p, fused);
    b.matrix(blk(il, "nextn.eh_proj.weight"), &[2 * p.n_embd, p.n_embd]);
    b.norm(blk(il, "nextn.enorm.weight"), p.n_embd);
    b.norm(blk(il, "nextn.hnorm.weight"), p.n_embd);
    b.norm(blk(il, "nextn.shared_head_norm.weight"), p.n_embd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Preset;
    use crate::{FileType, TensorType};

    #[test]
    fn full_size_matches_the_published_parameter_count() {
        let spec = ModelSpec::from_options(&SynthOptions::new(Preset::Qwen3Next80bA3b)).unwrap();
        // llama.cpp reports 79.67 B for Qwen3-Next-80B-A3B conversions (no MTP layer).
        let b = spec.n_params() as f64 / 1e9;
        assert!((b - 79.67).abs() < 0.005, "{b} B");
        assert_eq!(spec.n_layer, 48);
        let full = (0..48)
            .filter(|&il| spec.tensor(&blk(il, "attn_q.weight")).is_some())
            .count();
        assert_eq!(full, 12);
        assert_eq!(
            spec.tensor("blk.3.attn_q.weight").unwrap().shape,
            vec![2048, 8192]
        );
        assert_eq!(
            spec.tensor("blk.0.attn_qkv.weight").unwrap().shape,
            vec![2048, 8192]
        );
        assert_eq!(
            spec.tensor("blk.0.attn_gate.weight").unwrap().shape,
            vec![2048, 4096]
        );
        assert_eq!(
            spec.tensor("blk.0.ssm_ba.weight").unwrap().shape,
            vec![2048, 64]
        );
        assert_eq!(
            spec.tensor("blk.0.ssm_conv1d.weight").unwrap().shape,
            vec![4, 8192]
        );
        assert_eq!(
            spec.tensor("blk.0.ffn_down_exps.weight").unwrap().shape,
            vec![512, 2048, 512]
        );
        assert_eq!(
            spec.metadata.get_u32("qwen3next.rope.dimension_count"),
            Some(64)
        );
    }

    #[test]
    fn mtp_block_follows_the_trunk() {
        let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
        let plain = ModelSpec::from_options(&o).unwrap();
        o.mtp = true;
        let spec = ModelSpec::from_options(&o).unwrap();
        assert_ne!(
            o.fingerprint(),
            SynthOptions::new(Preset::Qwen3NextTiny).fingerprint()
        );
        assert_eq!(spec.metadata.get_u32("qwen3next.block_count"), Some(5));
        assert_eq!(
            spec.metadata.get_u32("qwen3next.nextn_predict_layers"),
            Some(1)
        );
        assert_eq!(
            plain.metadata.get_u32("qwen3next.nextn_predict_layers"),
            None
        );
        assert_eq!(
            spec.tensor("blk.4.nextn.eh_proj.weight").unwrap().shape,
            vec![512, 256]
        );
        // Block 4 is full attention (gated query), though (4 + 1) % 4 != 0.
        assert_eq!(
            spec.tensor("blk.4.attn_q.weight").unwrap().shape,
            vec![256, 512]
        );
        assert!(spec.tensor("blk.4.attn_qkv.weight").is_none());
        assert!(plain.tensor("blk.4.attn_norm.weight").is_none());
        let mut bad = SynthOptions::new(Preset::LlamaTiny);
        bad.mtp = true;
        assert!(ModelSpec::from_options(&bad).is_err());
    }

    #[test]
    fn legacy_and_fused_layouts() {
        let mut o = SynthOptions::new(Preset::Qwen3Next80bA3b);
        o.layers = Some(4);
        o.layout = LinearLayout::Legacy;
        o.fused_experts = true;
        o.ftype = FileType::Q4_K;
        let spec = ModelSpec::from_options(&o).unwrap();
        assert_eq!(
            spec.tensor("blk.0.ssm_in.weight").unwrap().shape,
            vec![2048, 12288]
        );
        assert!(spec.tensor("blk.0.attn_qkv.weight").is_none());
        let gu = spec.tensor("blk.1.ffn_gate_up_exps.weight").unwrap();
        assert_eq!(
            (gu.shape.clone(), gu.ty),
            (vec![2048, 1024, 512], TensorType::Q4_K)
        );
        assert!(spec.tensor("blk.1.ffn_gate_exps.weight").is_none());
        assert_eq!(spec.metadata.get_u32("qwen3next.block_count"), Some(4));
    }
}
