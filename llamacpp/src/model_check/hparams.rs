//! Other hyperparameters that ggml asserts on at the first decode.
//!
//! - Norm epsilons: ggml's norm kernels `GGML_ASSERT(eps >= 0.0f)`, so a negative or NaN
//!   `layer_norm_(rms_)epsilon` loads and then aborts in `llama_decode`.
//! - The gated-delta-net architectures derive the value head size from
//!   `ssm.inner_size / ssm.time_step_rank` when building the graph but size the tensors
//!   with `ssm.state_size`; when the two disagree, a ggml shape assertion aborts the decode
//!   (and a rank of 0 divides by zero).
//! - RoPE frequencies: a `rope.freq_base` that is not a positive finite number, or a
//!   `rope.scaling.factor` that is negative or not finite (0 means none), turns every rotary
//!   angle into NaN; the model then computes NaN logits, and a build with assertions (as
//!   `.ci/sanitize` makes) aborts in ggml's dot products.
//! - State-space sizes that llama.cpp divides by: `ssm.group_count` (while creating the
//!   mamba2-style tensors), `ssm.time_step_rank` (the heads: `ssm_a`'s second dimension in
//!   the SSM_SCAN support probe, the gated-delta-net graph) and `ssm.inner_size` (mamba's
//!   heads). 0 is an integer division by zero (SIGFPE); real files never hold it.

use super::{Keys, abort_reason};

/// Norm epsilon keys (`<arch>.` prefixed) llama.cpp passes to ggml's norm operations.
const EPS_KEYS: &[&str] = &[
    "attention.layer_norm_epsilon",
    "attention.layer_norm_rms_epsilon",
    "attention.group_norm_epsilon",
];

/// Architectures whose linear-attention graph computes `head_v_dim = ssm_d_inner /
/// ssm_dt_rank` while their tensors use `ssm_d_state` (src/models/<arch>.cpp).
const DELTA_NET_ARCHS: &[&str] = &["qwen3next", "qwen35", "qwen35moe"];

/// State-space keys (`<arch>.` prefixed) that must not be 0 when present.
const NONZERO_SSM_KEYS: &[&str] = &["ssm.group_count", "ssm.time_step_rank", "ssm.inner_size"];

/// Checks the norm epsilons and the linear-attention sizes of `keys`.
pub(super) fn check(keys: &Keys<'_>) -> Result<(), String> {
    for suffix in EPS_KEYS {
        let key = keys.arch_key(suffix);
        // NaN fails ggml's `eps >= 0.0f` as well.
        if let Some(eps) = keys.f32(&key)
            && (eps.is_nan() || eps < 0.0)
        {
            return Err(abort_reason(format!("{key} = {eps} is negative or NaN")));
        }
    }
    for suffix in ["rope.freq_base", "rope.freq_base_swa"] {
        let key = keys.arch_key(suffix);
        if let Some(v) = keys.f32(&key)
            && !(v.is_finite() && v > 0.0)
        {
            return Err(format!(
                "{key} = {v} is not a positive finite number (every rotary angle would be NaN)"
            ));
        }
    }
    let key = keys.arch_key("rope.scaling.factor");
    if let Some(v) = keys.f32(&key)
        && !(v.is_finite() && v >= 0.0)
    {
        return Err(format!(
            "{key} = {v} is negative or not finite (0 means no scaling; anything else would \
             make every rotary angle NaN or reversed)"
        ));
    }
    for suffix in NONZERO_SSM_KEYS {
        let key = keys.arch_key(suffix);
        if keys.u32s(&key).is_some_and(|v| v.contains(&0)) {
            return Err(abort_reason(format!("{key} = 0 is a divisor")));
        }
    }
    if DELTA_NET_ARCHS.contains(&keys.arch.as_str()) {
        let inner_key = keys.arch_key("ssm.inner_size");
        let state_key = keys.arch_key("ssm.state_size");
        let rank_key = keys.arch_key("ssm.time_step_rank");
        if let (Some(inner), Some(state), Some(rank)) = (
            keys.u32_first(&inner_key),
            keys.u32_first(&state_key),
            keys.u32_first(&rank_key),
        ) && (rank == 0 || u64::from(inner) != u64::from(state) * u64::from(rank))
        {
            return Err(abort_reason(format!(
                "{inner_key} = {inner} is not {state_key} ({state}) x {rank_key} ({rank})"
            )));
        }
    }
    Ok(())
}
