//! Rotary position embedding: the scaling type and the number of rotated dimensions.
//!
//! `load_hparams` maps `rope.scaling.type` through a table and `GGML_ASSERT`s that the
//! name was found. The rotated dimension count (`rope.dimension_count`, default the key
//! head size) is only checked against the head size for llama, deci and falcon; for every
//! other architecture ggml's rope kernel asserts at the first decode that it is even and
//! at most the head size, and with 0 it never finishes.

use super::{Keys, abort_reason};

/// The names `llama_rope_scaling_type_from_string` knows (src/llama-model.cpp).
const SCALING_TYPES: &[&str] = &["none", "linear", "yarn", "longrope"];

/// Architectures llama.cpp runs without RoPE (`llama_model_rope_type` returns NONE), so
/// their rotary count is never used.
const NO_ROPE_ARCHS: &[&str] = &[
    "clip",
    "gpt2",
    "gptj",
    "mpt",
    "refact",
    "bloom",
    "mamba",
    "mamba2",
    "jamba",
    "jina-bert-v2",
    "t5",
    "t5encoder",
    "jais",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "wavtokenizer-dec",
    "nemotron_h",
    "nemotron_h_moe",
    "kimi-linear",
    "kimi-k3",
    "glm5-next",
];

/// Checks the rope keys of `keys` as llama.cpp will read them.
pub(super) fn check(keys: &Keys<'_>) -> Result<(), String> {
    let key = keys.arch_key("rope.scaling.type");
    if let Some(t) = keys.string(&key)
        && !SCALING_TYPES.contains(&t.as_str())
    {
        return Err(abort_reason(format!(
            "{key} = {t:?} is not one of {SCALING_TYPES:?}"
        )));
    }
    if NO_ROPE_ARCHS.contains(&keys.arch.as_str()) {
        return Ok(());
    }
    // As load_hparams: without heads (layer 0) there is no rotary embedding.
    let n_head = keys
        .u32_first(&keys.arch_key("attention.head_count"))
        .unwrap_or(0);
    if n_head == 0 {
        return Ok(());
    }
    let n_embd = keys
        .u32_first(&keys.arch_key("embedding_length"))
        .unwrap_or(0);
    let head_key = keys.arch_key("attention.key_length");
    let head_k = keys.u32_first(&head_key).unwrap_or(n_embd / n_head);
    let rot_key = keys.arch_key("rope.dimension_count");
    let n_rot = keys.u32_first(&rot_key);
    check_dims(&rot_key, n_rot, &head_key, head_k)?;
    // Sliding-window layers: their own head size and count, defaulting to the above.
    let swa_head_key = keys.arch_key("attention.key_length_swa");
    let head_k_swa = keys.u32_first(&swa_head_key).unwrap_or(head_k);
    let swa_rot_key = keys.arch_key("rope.dimension_count_swa");
    let n_rot_swa = keys.u32_first(&swa_rot_key).or(n_rot);
    check_dims(&swa_rot_key, n_rot_swa, &swa_head_key, head_k_swa)
}

/// ggml_rope's conditions on the rotated count `n_rot` (`None`: the head size) for heads
/// of `head_k` values: even, and between 1 and the head size.
fn check_dims(
    rot_key: &str,
    n_rot: Option<u32>,
    head_key: &str,
    head_k: u32,
) -> Result<(), String> {
    let (what, n) = match n_rot {
        Some(n) => (format!("{rot_key} = {n}"), n),
        None => (format!("{rot_key} (default {head_key}) = {head_k}"), head_k),
    };
    if n == 0 || n % 2 != 0 || n > head_k {
        return Err(abort_reason(format!(
            "{what} must be even and within 2..={head_k} (the head size {head_key})"
        )));
    }
    Ok(())
}
