//! Checks of a model file's layer and expert counts before llama.cpp loads it.
//!
//! llama.cpp reads these hyperparameters and then `GGML_ASSERT`s their ranges
//! (`llama_model_base::load_hparams`), so a file, or a metadata override, with
//! `block_count = 0` or more experts used than present aborts the process
//! instead of failing the load. Here the same conditions are evaluated on the
//! file's metadata with the overrides applied, and reported as an error.

use std::ffi::CStr;

use llamacpp_sys as sys;

use crate::backend;
use crate::error::c_string;
use crate::model_params::ModelParams;

/// llama.cpp's `LLAMA_MAX_LAYERS` (src/llama-hparams.h; not part of the C API).
const MAX_LAYERS: u32 = 512;
/// llama.cpp's `LLAMA_MAX_EXPERTS` (same header).
const MAX_EXPERTS: u32 = 1024;

/// The file's metadata, freed on drop.
struct Meta(*mut sys::gguf_context);

impl Drop for Meta {
    fn drop(&mut self) {
        // SAFETY: a non-NULL context from gguf_init_from_file, freed once.
        unsafe { sys::gguf_free(self.0) }
    }
}

impl Meta {
    fn id(&self, key: &str) -> Option<i64> {
        let k = c_string(key).ok()?;
        // SAFETY: live context, NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(self.0, k.as_ptr()) };
        (id >= 0).then_some(id)
    }

    fn string(&self, key: &str) -> Option<String> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; the type is checked before reading.
        unsafe {
            (sys::gguf_get_kv_type(self.0, id) == sys::GGUF_TYPE_STRING)
                .then(|| backend::cstr_lossy(sys::gguf_get_val_str(self.0, id)))
        }
    }

    /// A `uint32` scalar, or the largest element of a `uint32`/`int32` array (the
    /// per-layer form). Other types are left to llama.cpp, which rejects them.
    fn u32_or_max(&self, key: &str) -> Option<u32> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; every read matches the type just checked,
        // and array indices stay below the array's length.
        unsafe {
            match sys::gguf_get_kv_type(self.0, id) {
                sys::GGUF_TYPE_UINT32 => Some(sys::gguf_get_val_u32(self.0, id)),
                sys::GGUF_TYPE_ARRAY => {
                    let n = sys::gguf_get_arr_n(self.0, id);
                    let data = sys::gguf_get_arr_data(self.0, id);
                    match sys::gguf_get_arr_type(self.0, id) {
                        sys::GGUF_TYPE_UINT32 | sys::GGUF_TYPE_INT32 if !data.is_null() => {
                            let vals = std::slice::from_raw_parts(data.cast::<u32>(), n);
                            Some(vals.iter().copied().max().unwrap_or(0))
                        }
                        _ => None,
                    }
                }
                _ => None,
            }
        }
    }
}

/// Architectures whose loader derives the recurrent layers from `full_attention_interval`
/// (default 4): every interval-th layer is full attention, the others linear attention.
const HYBRID_INTERVAL_ARCHS: &[&str] = &["qwen3next", "qwen35", "qwen35moe", "qwen4exp"];

/// Evaluates llama.cpp's hyperparameter assertions for the file at `path` with the
/// overrides of `params`; `Err` names the first one that would fail.
pub(crate) fn check_counts(path: &CStr, params: &ModelParams) -> Result<(), String> {
    let gp = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: NUL-terminated path; with ctx NULL only the gguf context is allocated.
    let (ctx, _) = backend::capture_log(|| unsafe { sys::gguf_init_from_file(path.as_ptr(), gp) });
    if ctx.is_null() {
        // Not readable as GGUF: llama.cpp reports that itself, without asserting.
        return Ok(());
    }
    let meta = Meta(ctx);
    let Some(arch) = meta.string("general.architecture") else {
        return Ok(());
    };
    // An Int override replaces the value (truncated to u32 as llama.cpp assigns it);
    // an override of another type is ignored by llama.cpp, so the file's value stays.
    let get = |suffix: &str| -> Option<u32> {
        let key = format!("{arch}.{suffix}");
        match params.int_override(&key) {
            Some(v) => Some(v as u32),
            None => meta.u32_or_max(&key),
        }
    };
    let Some(n_layer) = get("block_count") else {
        return Ok(()); // required key: llama.cpp fails the load cleanly without it
    };
    let fail = |what: String| Err(format!("{what} (llama.cpp would abort on it)"));
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
    if HYBRID_INTERVAL_ARCHS.contains(&arch.as_str())
        && meta
            .id(&format!("{arch}.attention.recurrent_layers"))
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
