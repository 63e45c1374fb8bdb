//! Building a model in memory with `llama_model_init_from_user`, without a
//! file: the same metadata and the same tensor values as [`crate::write_gguf`]
//! would write, handed to llama.cpp tensor by tensor.
//!
//! Without a file, llama.cpp's loader creates every tensor the architecture
//! can have, optional ones included (biases, weight scales, `rope_freqs`,
//! `ssm_in` next to `attn_qkv`), prefers the fused `ffn_gate_up_exps` where the
//! architecture has it, and skips the fused full-attention `attn_qkv`. So for
//! qwen3next and qwen35moe only the current linear-attention layout with fused
//! experts can be built this way (the spec must say so; values are not
//! rearranged), and a spec tensor llama.cpp did not ask for is an error. Tensors the spec does not list are filled with their neutral
//! value: one for per-tensor weight scales and RoPE frequency factors, zero
//! for everything else (biases, the unused `ssm_in`).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, c_void};
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Result, SynthError};
use crate::generate::Generator;
use crate::spec::{LinearLayout, ModelSpec, TensorSpec};
use llamacpp_ggml::gguf::Gguf;

/// A `llama_model` built in memory; freed on drop.
#[derive(Debug)]
pub struct InMemoryModel {
    ptr: NonNull<sys::llama_model>,
}

// SAFETY: a llama_model is not tied to the thread that created it.
unsafe impl Send for InMemoryModel {}

impl InMemoryModel {
    /// The raw model, valid while `self` lives.
    #[must_use]
    pub fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    /// Give up ownership; the caller must free it with `llama_model_free`.
    #[must_use]
    pub fn into_raw(self) -> *mut sys::llama_model {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for InMemoryModel {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_init_from_user and is freed once.
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) }
    }
}

/// State shared with the fill callback.
struct Fill<'a> {
    by_name: HashMap<&'a str, &'a TensorSpec>,
    filled: HashSet<String>,
    seed: u64,
    generator: Generator,
    error: Option<SynthError>,
}

impl Fill<'_> {
    /// Fill one tensor the loader allocated.
    ///
    /// # Safety
    /// `tensor` must be a live tensor with an allocated backend buffer.
    unsafe fn fill(&mut self, tensor: *mut sys::ggml_tensor) -> Result<()> {
        // SAFETY: the caller guarantees a live tensor; its name is NUL-terminated.
        let (name, nbytes) = unsafe {
            (
                CStr::from_ptr((*tensor).name.as_ptr()).to_string_lossy(),
                sys::ggml_nbytes(tensor),
            )
        };
        let Some(t) = self.by_name.get(name.as_ref()).copied() else {
            let neutral = if is_multiplicative(&name) {
                1.0f32
            } else {
                0.0
            };
            // SAFETY: the caller guarantees a live, allocated tensor of nbytes.
            return unsafe { fill_neutral(tensor, nbytes, neutral, &name) };
        };
        if t.n_bytes() != nbytes as u64 {
            return Err(SynthError::Layout {
                path: "<memory>".into(),
                detail: format!(
                    "{name}: llama.cpp allocated {nbytes} bytes, the spec has {}",
                    t.n_bytes()
                ),
            });
        }
        self.filled.insert(t.name.clone());
        let mut offset = 0usize;
        self.generator.tensor(t, self.seed, |bytes| {
            // SAFETY: offset + bytes.len() <= nbytes (the sizes match, checked above);
            // ggml copies the bytes into the tensor's buffer.
            unsafe {
                sys::ggml_backend_tensor_set(tensor, bytes.as_ptr().cast(), offset, bytes.len())
            };
            offset += bytes.len();
            Ok(())
        })?;
        Ok(())
    }
}

/// Optional tensors llama.cpp multiplies by (per-tensor weight scales, RoPE
/// frequency factors): their neutral value is 1; every other optional tensor
/// (biases, unused alternative projections) is neutral at 0.
fn is_multiplicative(name: &str) -> bool {
    name.ends_with(".scale")
        || name.ends_with(".input_scale")
        || name.contains("rope_freqs")
        || name.contains("rope_factors")
}

/// Fill a tensor that is not in the spec with `value` (F32) or zero bytes.
///
/// # Safety
/// `tensor` must be a live tensor with `nbytes` of allocated data.
unsafe fn fill_neutral(
    tensor: *mut sys::ggml_tensor,
    nbytes: usize,
    value: f32,
    name: &str,
) -> Result<()> {
    if value == 0.0 {
        // SAFETY: live tensor with nbytes of allocated data (caller's contract).
        unsafe { sys::ggml_backend_tensor_memset(tensor, 0, 0, nbytes) };
        return Ok(());
    }
    // SAFETY: live tensor; reading its type field.
    if unsafe { (*tensor).type_ } != sys::GGML_TYPE_F32 {
        return Err(SynthError::Ggml(format!(
            "{name}: expected an F32 tensor to fill with {value}"
        )));
    }
    let ones = vec![value; nbytes / 4];
    // SAFETY: live tensor of nbytes; `ones` holds nbytes / 4 f32 values.
    unsafe { sys::ggml_backend_tensor_set(tensor, ones.as_ptr().cast(), 0, ones.len() * 4) };
    Ok(())
}

unsafe extern "C" fn fill_callback(tensor: *mut sys::ggml_tensor, ud: *mut c_void) {
    // SAFETY: ud is the `Fill` that `load_in_memory` passed, alive and not
    // otherwise borrowed during llama_model_init_from_user.
    let fill = unsafe { &mut *ud.cast::<Fill<'_>>() };
    if fill.error.is_some() {
        return;
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: llama.cpp passes tensors it has just allocated.
        unsafe { fill.fill(tensor) }
    }));
    fill.error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(SynthError::Ggml("panic while filling a tensor".into())),
    };
}

/// Build the model `spec` describes in memory with `llama_model_init_from_user`.
///
/// Call `llama_backend_init` first. `params` are passed through (GPU layers,
/// devices, ...); the load mode is set by llama.cpp.
///
/// # Errors
/// [`SynthError::InvalidOptions`] for the layouts only a file can carry (see
/// the module documentation), ggml errors, or llama.cpp refusing the model.
pub fn load_in_memory(spec: &ModelSpec, params: sys::llama_model_params) -> Result<InMemoryModel> {
    let fused = matches!(spec.arch.as_str(), "qwen3next" | "qwen35moe");
    let file_only = |n: &str| n.contains(".ssm_in.") || (fused && n.contains("ffn_gate_exps"));
    if let Some(t) = spec.tensors.iter().find(|t| file_only(&t.name)) {
        return Err(SynthError::InvalidOptions(format!(
            "{} can only be loaded from a file; in memory {} needs the {} layout and fused experts",
            t.name,
            spec.arch,
            LinearLayout::Current
        )));
    }
    let mut ctx = Gguf::empty()?;
    ctx.set_all(&spec.metadata)?;
    ctx.add_tensors(&spec.tensor_infos())?;
    let mut fill = Fill {
        by_name: spec.tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
        filled: HashSet::new(),
        seed: spec.seed,
        generator: Generator::new(),
        error: None,
    };
    // SAFETY: ctx is a live gguf context holding the metadata and tensor types;
    // the callback matches llama_model_set_tensor_data_t and gets `fill`, which
    // outlives the call and is only used through the callback meanwhile.
    let ptr = unsafe {
        sys::llama_model_init_from_user(
            ctx.as_ptr(),
            Some(fill_callback),
            (&raw mut fill).cast(),
            params,
        )
    };
    let model = NonNull::new(ptr).map(|ptr| InMemoryModel { ptr });
    if let Some(e) = fill.error {
        return Err(e);
    }
    let model = model
        .ok_or_else(|| SynthError::Ggml("llama_model_init_from_user refused the model".into()))?;
    if let Some(t) = spec.tensors.iter().find(|t| !fill.filled.contains(&t.name)) {
        return Err(SynthError::InvalidOptions(format!(
            "llama.cpp did not create {} when building {} in memory",
            t.name, spec.arch
        )));
    }
    Ok(model)
}
