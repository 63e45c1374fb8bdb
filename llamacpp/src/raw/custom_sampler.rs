//! The C side of a Rust sampler: a `llama_sampler` whose `ctx` is a boxed
//! [`Adapter`](crate::custom_sampler::Adapter) and whose interface table calls back into
//! it. The callbacks only turn pointers into references; the adapter's methods run the
//! user's code and keep every panic from reaching C (see `custom_sampler.rs`).

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use llamacpp_sys as sys;

use super::candidates::RawCandidates;
use super::sampler::RawSampler;
use crate::custom_sampler::Adapter;
use crate::panic::drop_quietly;
use crate::vocab::Token;

impl RawSampler<'static> {
    /// Wraps `adapter` in a new `llama_sampler`; `None` only if llama.cpp fails to allocate
    /// (the adapter is dropped then).
    pub(crate) fn custom(adapter: Box<Adapter>) -> Option<Self> {
        let adapter = Box::into_raw(adapter);
        // llama.cpp only reads the interface table, so a shared static serves every sampler.
        let iface = (&raw const VTABLE).cast_mut();
        // SAFETY: the table's callbacks match `llama_sampler_i`; `adapter` is a live Box
        // that `free_cb` reclaims.
        let p = unsafe { sys::llama_sampler_init(iface, adapter.cast()) };
        // SAFETY: NULL or a new sampler we own; it borrows no vocabulary.
        let s = unsafe { RawSampler::from_ptr(p) };
        if s.is_none() {
            // SAFETY: C did not take the adapter; it is still ours.
            drop(unsafe { Box::from_raw(adapter) });
        }
        s
    }
}

static VTABLE: sys::llama_sampler_i = sys::llama_sampler_i {
    name: Some(name_cb),
    accept: Some(accept_cb),
    apply: Some(apply_cb),
    reset: Some(reset_cb),
    clone: Some(clone_cb),
    free: Some(free_cb),
    backend_init: None,
    backend_accept: None,
    backend_apply: None,
    backend_set_input: None,
    backend_reset: None,
    copy_state: None,
};

/// # Safety
/// `smpl` must be a live sampler made by [`RawSampler::custom`], not mutably borrowed for `'a`.
unsafe fn adapter<'a>(smpl: *const sys::llama_sampler) -> &'a Adapter {
    // SAFETY: per the contract, `ctx` is the Box'd adapter `custom` stored.
    unsafe { &*(*smpl).ctx.cast::<Adapter>() }
}

/// # Safety
/// As [`adapter`], and no other reference to it may exist for `'a`.
unsafe fn adapter_mut<'a>(smpl: *mut sys::llama_sampler) -> &'a mut Adapter {
    // SAFETY: per the contract.
    unsafe { &mut *(*smpl).ctx.cast::<Adapter>() }
}

unsafe extern "C" fn name_cb(smpl: *const sys::llama_sampler) -> *const c_char {
    // SAFETY: llama.cpp passes one of our live samplers (only `custom` uses this table).
    unsafe { adapter(smpl) }.name().as_ptr()
}

unsafe extern "C" fn apply_cb(
    smpl: *mut sys::llama_sampler,
    cur_p: *mut sys::llama_token_data_array,
) {
    // SAFETY: llama.cpp passes one of our live samplers; callbacks run on the thread
    // holding `&mut SamplerChain`, so nothing else touches the adapter meanwhile.
    let a = unsafe { adapter_mut(smpl) };
    // SAFETY: llama.cpp passes a valid candidate array for the duration of the call.
    let Some(raw) = (unsafe { cur_p.as_mut() }) else {
        return;
    };
    if raw.size == 0 || raw.data.is_null() {
        return;
    }
    // SAFETY: `raw` has `size >= 1` entries built by llama.cpp from the vocabulary (ids in
    // range), exclusively ours until the callback returns.
    a.apply(unsafe { RawCandidates::new(raw) });
}

unsafe extern "C" fn accept_cb(smpl: *mut sys::llama_sampler, token: sys::llama_token) {
    // SAFETY: as in `apply_cb`.
    let a = unsafe { adapter_mut(smpl) };
    // The chain only accepts ids it sampled or checked against the vocabulary.
    a.accept(Token::from_candidate(token));
}

unsafe extern "C" fn reset_cb(smpl: *mut sys::llama_sampler) {
    // SAFETY: as in `apply_cb`.
    unsafe { adapter_mut(smpl) }.reset();
}

unsafe extern "C" fn clone_cb(smpl: *const sys::llama_sampler) -> *mut sys::llama_sampler {
    // SAFETY: llama.cpp passes one of our live samplers; `&SamplerChain` excludes writers.
    let a = unsafe { adapter(smpl) };
    // Never NULL to C unless allocation fails (a refused clone is a poisoned stand-in).
    RawSampler::custom(a.clone_adapter()).map_or(std::ptr::null_mut(), RawSampler::into_ptr)
}

unsafe extern "C" fn free_cb(smpl: *mut sys::llama_sampler) {
    // SAFETY: llama.cpp passes one of our samplers, once, right before deleting it.
    let ctx = unsafe { (*smpl).ctx };
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is the Box `custom` leaked; nothing uses it after `free`.
    let adapter = unsafe { Box::from_raw(ctx.cast::<Adapter>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(adapter))) {
        drop_quietly(payload);
    }
}
