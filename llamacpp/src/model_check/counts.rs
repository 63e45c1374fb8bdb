//! Layer and expert counts.
//!
//! llama.cpp reads these hyperparameters and then `GGML_ASSERT`s their ranges
//! (`llama_model_base::load_hparams`), so a file, or a metadata override, with
//! `block_count = 0` or more experts used than present aborts the process
//! instead of failing the load.

use super::{Keys, abort_reason};

/// llama.cpp's `LLAMA_MAX_LAYERS` (src/llama-hparams.h; not part of the C API).
const MAX_LAYERS: u32 = 512;
/// llama.cpp's `LLAMA_MAX_EXPERTS` (same header).
const MAX_EXPERTS: u32 = 1024;

/// Architectures whose loader derives the recurrent layers from `full_attention_interval`
/// (default 4): every interval-th layer is full attention, the others linear attention.
const HYBRID_INTERVAL_ARCHS: &[&str] = &["qwen3next", "qwen35", "qwen35moe", "qwen4exp"];

/// Evaluates llama.cpp's layer and expert count assertions; `Err` names the first one
/// that would fail.
pub(super) fn check(keys: &Keys<'_>) -> Result<(), String> {
    let arch = keys.arch.as_str();
    let get = |suffix: &str| keys.u32_max(&keys.arch_key(suffix));
    let Some(n_layer) = get("block_count") else {
        return Ok(()); // required key: llama.cpp fails the load cleanly without it
    };
    let fail = |what: String| Err(abort_reason(what));
    if n_layer == 0 || n_layer > MAX_LAYERS {
        return fail(format!(
            "block_count = {n_layer} is outside 1..={MAX_LAYERS}"
        ));
    }
    let nextn = get("nextn_predict_layers").unwrap_or(0);
    if nextn > n_layer {
        return fail(format!(
            "nextn_predict_layers = {nextn} exceeds block_count = {n_layer}"
        ));
    }
    for k in ["posnet.block_count", "convnext.block_count"] {
        if let Some(v) = get(k).filter(|&v| v > n_layer) {
            return fail(format!("{k} = {v} exceeds block_count = {n_layer}"));
        }
    }
    // Hybrid models that place one full-attention layer every `full_attention_interval`
    // layers (when no explicit `attention.recurrent_layers` list is given): an interval of 0
    // divides by zero in the loader, and fewer layers than the interval leave the attention
    // cache without layers, whose empty buffer aborts context creation (GGML_ASSERT(buffer)).
    if HYBRID_INTERVAL_ARCHS.contains(&arch)
        && keys
            .meta()
            .id(&keys.arch_key("attention.recurrent_layers"))
            .is_none()
    {
        let interval = get("full_attention_interval").unwrap_or(4);
        if interval == 0 {
            return fail("full_attention_interval = 0".into());
        }
        if n_layer < interval {
            return fail(format!(
                "block_count = {n_layer} is below full_attention_interval = {interval}, so the \
                 model has no attention layer"
            ));
        }
    }
    let n_expert = get("expert_count").unwrap_or(0);
    let used = get("expert_used_count").unwrap_or(0);
    let groups = get("expert_group_count").unwrap_or(0);
    let group_used = get("expert_group_used_count").unwrap_or(0);
    if n_expert > MAX_EXPERTS {
        return fail(format!("expert_count = {n_expert} exceeds {MAX_EXPERTS}"));
    }
    if used > n_expert {
        return fail(format!(
            "expert_used_count = {used} exceeds expert_count = {n_expert}"
        ));
    }
    if n_expert > 0 {
        if used == 0 {
            return fail("expert_used_count = 0 with experts present".into());
        }
        if groups >= n_expert {
            return fail(format!(
                "expert_group_count = {groups} is not below expert_count = {n_expert}"
            ));
        }
        if groups > 1
            && (!n_expert.is_multiple_of(groups) || group_used == 0 || group_used >= groups)
        {
            return fail(format!(
                "expert groups {groups} (using {group_used}) do not fit {n_expert} experts"
            ));
        }
    } else if groups != 0 {
        return fail(format!("expert_group_count = {groups} without experts"));
    }
    Ok(())
}
