//! The Rust half of the exception shim (`llamacpp-sys/shim/boundary.cpp`, `shim.cpp`,
//! `json_schema.cpp`): the buffer a `llama_sys_*` wrapper writes a C++ exception's message
//! into, and the wrapped calls that belong to no handle of their own. (The sampler
//! wrappers are methods of [`RawSampler`](super::sampler::RawSampler) and
//! [`RawChain`](super::sampler::RawChain).)

use std::ffi::CStr;

use llamacpp_sys as sys;

use crate::error::{Error, Result};

/// A buffer the C++ shim writes an exception message into (NUL-terminated,
/// truncated to its size).
pub(crate) struct ErrBuf([u8; 256]);

impl ErrBuf {
    pub(crate) fn new() -> Self {
        Self([0; 256])
    }

    /// The pointer to pass as the wrapper's `err`.
    pub(crate) fn ptr(&mut self) -> *mut std::ffi::c_char {
        self.0.as_mut_ptr().cast()
    }

    /// The size to pass as the wrapper's `err_len`.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The message written so far (empty when none was).
    pub(crate) fn text(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }

    /// The error for a wrapper that reported an exception while calling `what`.
    pub(crate) fn cpp(&self, what: &'static str) -> Error {
        Error::Cpp {
            what,
            message: self.text(),
        }
    }
}

/// `llama_decode` through the shim: the return code, or [`Error::Cpp`] when it threw
/// (a compute buffer that could not be allocated, a graph that could not be built, ...).
///
/// # Safety
/// As for `llama_decode`: a valid context and a batch whose arrays are valid for the call.
pub(crate) unsafe fn decode(ctx: *mut sys::llama_context, batch: sys::llama_batch) -> Result<i32> {
    let (mut rc, mut e) = (0, ErrBuf::new());
    // SAFETY: the caller's guarantees; `rc` and `e` are writable for the call.
    match unsafe { sys::llama_sys_decode(ctx, batch, &mut rc, e.ptr(), e.len()) } {
        0 => Ok(rc),
        _ => Err(e.cpp("llama_decode")),
    }
}

/// `llama_encode` through the shim, as [`decode`].
///
/// # Safety
/// As for `llama_encode`: a valid context and a batch whose arrays are valid for the call.
pub(crate) unsafe fn encode(ctx: *mut sys::llama_context, batch: sys::llama_batch) -> Result<i32> {
    let (mut rc, mut e) = (0, ErrBuf::new());
    // SAFETY: the caller's guarantees; `rc` and `e` are writable for the call.
    match unsafe { sys::llama_sys_encode(ctx, batch, &mut rc, e.ptr(), e.len()) } {
        0 => Ok(rc),
        _ => Err(e.cpp("llama_encode")),
    }
}

/// `llama_process` through the shim, as [`decode`].
///
/// # Safety
/// As for `llama_process`: a valid context and a valid extended batch.
pub(crate) unsafe fn process(
    ctx: *mut sys::llama_context,
    kind: sys::llama_process_type,
    batch: *mut sys::llama_batch_ext,
) -> Result<i32> {
    let (mut rc, mut e) = (0, ErrBuf::new());
    // SAFETY: the caller's guarantees; `rc` and `e` are writable for the call.
    match unsafe { sys::llama_sys_process(ctx, kind, batch, &mut rc, e.ptr(), e.len()) } {
        0 => Ok(rc),
        _ => Err(e.cpp("llama_process")),
    }
}

/// llama.cpp's JSON-schema-to-GBNF converter, through the shim: `Ok(grammar)`, or
/// `Err(message)` for a schema it rejects; `None` when the shim could not allocate its
/// answer. (Stack use grows with the text: the caller sizes the thread that runs it.)
pub(crate) fn json_schema_to_grammar(schema: &str) -> Option<std::result::Result<String, String>> {
    let mut out: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: `schema` is valid for its length (it need not be NUL-terminated: the length
    // is passed); the shim catches every C++ exception and always sets `out` (NULL or a
    // string it allocated, freed below).
    let rc = unsafe {
        sys::llama_sys_json_schema_to_grammar(schema.as_ptr().cast(), schema.len(), &mut out)
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: not NULL, so the shim returned a NUL-terminated string it allocated.
    let text = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `out` came from the shim's allocator and is freed once, after the copy above.
    unsafe { sys::llama_sys_string_free(out) };
    Some(if rc == 0 { Ok(text) } else { Err(text) })
}
