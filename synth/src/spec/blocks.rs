//! Layer pieces shared by several architectures.

use super::{Builder, blk};
use crate::init::Init;

/// Sizes of a full-attention block with query/key norms.
pub(crate) struct Attention {
    pub n_embd: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub head_dim: u64,
    /// Qwen3-Next / Qwen3.5: the query projection also yields a per-head output
    /// gate, so `attn_q` is twice as wide.
    pub gated: bool,
}

/// `attn_q`, `attn_k`, `attn_v`, `attn_output`, `attn_q_norm`, `attn_k_norm`.
pub(crate) fn attention_qk_norm(b: &mut Builder, il: u32, a: &Attention) {
    let q_width = a.n_head * a.head_dim * if a.gated { 2 } else { 1 };
    let kv_width = a.n_head_kv * a.head_dim;
    b.matrix(blk(il, "attn_q.weight"), &[a.n_embd, q_width]);
    b.matrix(blk(il, "attn_k.weight"), &[a.n_embd, kv_width]);
    b.matrix(blk(il, "attn_v.weight"), &[a.n_embd, kv_width]);
    b.matrix(
        blk(il, "attn_output.weight"),
        &[a.n_head * a.head_dim, a.n_embd],
    );
    b.norm(blk(il, "attn_q_norm.weight"), a.head_dim);
    b.norm(blk(il, "attn_k_norm.weight"), a.head_dim);
}

/// Sizes of a routed-expert block.
pub(crate) struct Experts {
    pub n_embd: u64,
    pub n_expert: u64,
    pub ff_exp: u64,
    /// One `ffn_gate_up_exps` (gate rows then up rows) instead of two tensors.
    pub fused: bool,
}

/// The router `ffn_gate_inp` and the expert matrices.
pub(crate) fn routed_experts(b: &mut Builder, il: u32, e: &Experts) {
    b.matrix(blk(il, "ffn_gate_inp.weight"), &[e.n_embd, e.n_expert]);
    if e.fused {
        b.matrix(
            blk(il, "ffn_gate_up_exps.weight"),
            &[e.n_embd, 2 * e.ff_exp, e.n_expert],
        );
    } else {
        b.matrix(
            blk(il, "ffn_gate_exps.weight"),
            &[e.n_embd, e.ff_exp, e.n_expert],
        );
        b.matrix(
            blk(il, "ffn_up_exps.weight"),
            &[e.n_embd, e.ff_exp, e.n_expert],
        );
    }
    b.matrix(
        blk(il, "ffn_down_exps.weight"),
        &[e.ff_exp, e.n_embd, e.n_expert],
    );
}

/// The sigmoid-gated shared expert of Qwen3-Next / Qwen3.5: the gate
/// `ffn_gate_inp_shexp` is a vector (one logit per token), kept F32.
pub(crate) fn shared_expert(b: &mut Builder, il: u32, n_embd: u64, ff_shexp: u64) {
    b.tensor(
        blk(il, "ffn_gate_inp_shexp.weight"),
        &[n_embd],
        Init::fan_in(n_embd),
    );
    b.matrix(blk(il, "ffn_gate_shexp.weight"), &[n_embd, ff_shexp]);
    b.matrix(blk(il, "ffn_up_shexp.weight"), &[n_embd, ff_shexp]);
    b.matrix(blk(il, "ffn_down_shexp.weight"), &[ff_shexp, n_embd]);
}

/// Per-head decay rates: `ssm_a = -exp(A_log)` with A in [1, 16) as in the
/// reference initialisation, so every head forgets at its own rate.
pub(crate) const SSM_A: Init = Init::Uniform {
    lo: -16.0,
    hi: -1.0,
};
/// `ssm_dt.bias`: inverse softplus of dt in [0.001, 0.1), roughly log(dt).
pub(crate) const SSM_DT_BIAS: Init = Init::Uniform { lo: -6.9, hi: -2.3 };
