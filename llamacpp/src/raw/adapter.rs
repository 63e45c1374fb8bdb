//! [`RawAdapter`]: an owned `llama_adapter_lora` of one model, and the calls that
//! apply adapters and control vectors to a context.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::model::{RawModel, read_string};
use crate::context::Context;

/// An owned LoRA adapter, freed on drop. It borrows its model: llama.cpp frees adapters
/// with their model, so one outliving it would dangle.
///
/// Loading and freeing write the model's adapter set, which llama.cpp does not
/// synchronise: callers hold the model's adapter lock for writing around both.
pub(crate) struct RawAdapter<'m> {
    ptr: NonNull<sys::llama_adapter_lora>,
    model: *const sys::llama_model,
    _model: PhantomData<&'m RawModel>,
}

// SAFETY: an adapter is immutable after loading (contexts only read its tensors);
// freeing it writes the model's adapter set, which the owner does under the model's lock.
unsafe impl Send for RawAdapter<'_> {}
// SAFETY: as above: shared use only reads.
unsafe impl Sync for RawAdapter<'_> {}

impl Drop for RawAdapter<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the adapter and its model is alive ('m); the owner drops it only
        // once no context uses it, holding the model's adapter lock.
        unsafe { sys::llama_adapter_lora_free(self.ptr.as_ptr()) }
    }
}

impl<'m> RawAdapter<'m> {
    /// Loads the adapter file at `path` for `model`; `None` when llama.cpp rejects it
    /// (its log says why). The caller holds the model's adapter lock for writing.
    pub(crate) fn load(model: &'m RawModel, path: &CStr) -> Option<Self> {
        // SAFETY: a live model and a NUL-terminated path; llama.cpp catches its own
        // exceptions and returns NULL; the adapter set is written under the caller's lock.
        let ptr = unsafe { sys::llama_adapter_lora_init(model.as_ptr(), path.as_ptr()) };
        Some(RawAdapter {
            ptr: NonNull::new(ptr)?,
            model: model.as_ptr(),
            _model: PhantomData,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_adapter_lora {
        self.ptr.as_ptr()
    }

    /// One scalar metadata value as a string.
    pub(crate) fn meta(&self, key: &CStr) -> Option<String> {
        // SAFETY: a live adapter, a NUL-terminated key; the closure passes `buf` with its
        // true length `len`.
        read_string(|buf, len| unsafe {
            sys::llama_adapter_meta_val_str(self.as_ptr(), key.as_ptr(), buf, len)
        })
    }

    pub(crate) fn meta_count(&self) -> i32 {
        // SAFETY: a live adapter; the getter only reads it.
        unsafe { sys::llama_adapter_meta_count(self.as_ptr()) }
    }

    /// The key and value of metadata entry `i` (`None` outside `0..meta_count`, which
    /// llama.cpp checks).
    pub(crate) fn meta_by_index(&self, i: i32) -> Option<(String, String)> {
        // SAFETY: a live adapter; llama.cpp checks `i`; the closures pass `b` with its
        // true length `l`.
        let k = read_string(|b, l| unsafe {
            sys::llama_adapter_meta_key_by_index(self.as_ptr(), i, b, l)
        })?;
        // SAFETY: as above.
        let v = read_string(|b, l| unsafe {
            sys::llama_adapter_meta_val_str_by_index(self.as_ptr(), i, b, l)
        })?;
        Some((k, v))
    }

    /// The invocation token ids of an activated LoRA (empty for a plain LoRA), unchecked
    /// against the vocabulary.
    pub(crate) fn alora_invocation_tokens(&self) -> &[i32] {
        // SAFETY: a live adapter; the getter only reads it.
        let n = unsafe { sys::llama_adapter_get_alora_n_invocation_tokens(self.as_ptr()) };
        if n == 0 {
            return &[];
        }
        // SAFETY: a live adapter; the pointer is its vector's data.
        let p = unsafe { sys::llama_adapter_get_alora_invocation_tokens(self.as_ptr()) };
        if p.is_null() {
            return &[];
        }
        // SAFETY: with n > 0 the vector holds n ids at `p`, unchanged while the adapter
        // lives (it is only written while loading), which the borrow of `self` covers.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }
}

/// Applies exactly `adapters` with `scales` to `ctx` (replacing the previous set). False,
/// without calling, when the lengths differ or an adapter belongs to another model
/// (llama.cpp would use it on this one).
///
/// The context keeps pointers to the adapters: the caller keeps them alive (and
/// unfreed) until it applies another set.
pub(crate) fn set_lora_adapters(
    ctx: &mut Context<'_>,
    adapters: &[&RawAdapter<'_>],
    scales: &[f32],
) -> bool {
    let model = ctx.model().as_ptr().cast_const();
    if adapters.len() != scales.len() || adapters.iter().any(|a| a.model != model) {
        return false;
    }
    let mut ptrs: Vec<*mut sys::llama_adapter_lora> = adapters.iter().map(|a| a.as_ptr()).collect();
    let mut scales = scales.to_vec();
    // SAFETY: a live context; `ptrs` and `scales` both hold adapters.len() entries (the
    // pointers non-NULL even when empty, which llama.cpp asserts), every adapter belongs
    // to the context's model (checked) and is kept alive by the caller.
    unsafe {
        sys::llama_set_adapters_lora(
            ctx.raw().as_ptr(),
            ptrs.as_mut_ptr(),
            ptrs.len(),
            scales.as_mut_ptr(),
        )
    };
    true
}

/// Sets (`Some`) or clears (`None`) the control vector of `ctx`: `n_embd` floats per layer
/// from layer 1, layers `il_start..=il_end` applied. llama.cpp's return code: 0, or -1
/// when `n_embd` is not the model's or the buffers could not be allocated.
pub(crate) fn set_control_vector(
    ctx: &mut Context<'_>,
    data: Option<&[f32]>,
    n_embd: i32,
    il_start: i32,
    il_end: i32,
) -> i32 {
    let (ptr, len) = data.map_or((std::ptr::null(), 0), |d| (d.as_ptr(), d.len()));
    // SAFETY: a live context; `ptr` is NULL ("clear", nothing read) or `data`, of `len`
    // floats; llama.cpp reads a layer's `n_embd` floats only where they lie within `len`,
    // checks `n_embd` against the model, and uses the layer range only to select layers.
    unsafe { sys::llama_set_adapter_cvec(ctx.raw().as_ptr(), ptr, len, n_embd, il_start, il_end) }
}
