//! Thin owners of the ggml objects a single-op graph needs: a context holding tensor
//! metadata, backend buffers, and buffer types (backends and devices are in `device`; the graph
//! built from them is in `graph`). Raw tensor pointers stay inside this crate; what leaves it is
//! plain Rust data.

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use llamacpp_sys as sys;

use crate::Error;

/// Bytes of one row of `n` values of type `ty` (`n` a multiple of the block size).
pub(crate) fn row_size(ty: sys::ggml_type, n: usize) -> usize {
    assert!(ty < sys::GGML_TYPE_COUNT, "not a ggml type: {ty}");
    // SAFETY: arithmetic on the type's static traits; the assertion keeps `ty` in range.
    unsafe { sys::ggml_row_size(ty, n as i64) }
}

/// Routes ggml's log to stderr without its debug and info lines (the repack buffer logs a
/// line per tensor it repacks). Installed once, by the first context this crate creates.
fn quiet_logs() {
    static ONCE: Once = Once::new();
    // level of the last message, for GGML_LOG_LEVEL_CONT continuations
    static LAST: AtomicU32 = AtomicU32::new(sys::GGML_LOG_LEVEL_NONE);

    unsafe extern "C" fn log(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
        let level = if level == sys::GGML_LOG_LEVEL_CONT {
            LAST.load(Ordering::Relaxed)
        } else {
            LAST.store(level, Ordering::Relaxed);
            level
        };
        if level >= sys::GGML_LOG_LEVEL_WARN && !text.is_null() {
            // SAFETY: ggml passes a NUL-terminated message that lives for the call.
            let text = unsafe { CStr::from_ptr(text) };
            eprint!("{}", text.to_string_lossy());
        }
    }

    ONCE.call_once(|| {
        // SAFETY: `log` has the callback's signature and is valid for the program's lifetime;
        // it ignores the (null) user data.
        unsafe { sys::ggml_log_set(Some(log), std::ptr::null_mut()) };
    });
}

/// A ggml context that holds tensor metadata only (`no_alloc`): data lives in backend buffers.
pub(crate) struct Context(NonNull<sys::ggml_context>);

impl Context {
    /// Room for `n_tensors` tensors and one default-size graph.
    pub(crate) fn new(n_tensors: usize) -> Result<Self, Error> {
        quiet_logs();
        // SAFETY: the overhead functions only read constants.
        let mem_size =
            unsafe { sys::ggml_tensor_overhead() * n_tensors + sys::ggml_graph_overhead() + 1024 };
        let params = sys::ggml_init_params {
            mem_size,
            mem_buffer: std::ptr::null_mut(),
            no_alloc: true,
        };
        // SAFETY: ggml_init allocates its own arena (mem_buffer is null) and returns null on failure.
        let ctx = unsafe { sys::ggml_init(params) };
        NonNull::new(ctx)
            .map(Self)
            .ok_or(Error::Ggml("ggml_init failed"))
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::ggml_context {
        self.0.as_ptr()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context came from ggml_init and is freed once; tensors pointing into it
        // are not used after the owner (the graph) drops it.
        unsafe { sys::ggml_free(self.0.as_ptr()) }
    }
}

/// A backend buffer holding all tensors of one context.
pub(crate) struct Buffer(NonNull<sys::ggml_backend_buffer>);

impl Buffer {
    /// Allocates every tensor of `ctx` that has no data yet in one buffer of type `buft`.
    pub(crate) fn alloc_ctx_tensors(ctx: &Context, buft: BufferType) -> Result<Self, Error> {
        // SAFETY: ctx is a live no_alloc context and buft a valid buffer type; the function
        // returns null when there is nothing to allocate or the allocation fails.
        let buf = unsafe { sys::ggml_backend_alloc_ctx_tensors_from_buft(ctx.as_ptr(), buft.0) };
        NonNull::new(buf).map(Self).ok_or(Error::Ggml(
            "ggml_backend_alloc_ctx_tensors_from_buft failed",
        ))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: the buffer was allocated by ggml-backend and is freed once.
        unsafe { sys::ggml_backend_buffer_free(self.0.as_ptr()) }
    }
}

/// A backend buffer type (the CPU's default one, or one of its extra types such as `CPU_REPACK`).
#[derive(Clone, Copy, Debug)]
pub struct BufferType(sys::ggml_backend_buffer_type_t);

// SAFETY: buffer types are static, immutable descriptors owned by the backend registry;
// ggml-backend uses them from any thread.
unsafe impl Send for BufferType {}
// SAFETY: as above, nothing in them is mutated through this handle.
unsafe impl Sync for BufferType {}

impl BufferType {
    pub(crate) fn from_raw(buft: sys::ggml_backend_buffer_type_t) -> Self {
        Self(buft)
    }

    /// The CPU backend's plain host buffer type.
    pub fn cpu() -> Self {
        // SAFETY: returns a pointer to a static buffer type.
        Self(unsafe { sys::ggml_backend_cpu_buffer_type() })
    }

    /// The CPU device's extra buffer types, found the way llama.cpp finds them: the CPU
    /// device's registry exports `ggml_backend_dev_get_extra_bufts`.
    pub fn cpu_extra() -> Vec<Self> {
        // SAFETY: device lookup has no preconditions and returns null when there is no CPU device.
        let dev = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
        if dev.is_null() {
            return Vec::new();
        }
        let name = c"ggml_backend_dev_get_extra_bufts";
        // SAFETY: dev is a valid device; its registry lookup returns null for unknown names.
        let f = unsafe {
            let reg = sys::ggml_backend_dev_backend_reg(dev);
            sys::ggml_backend_reg_get_proc_address(reg, name.as_ptr())
        };
        if f.is_null() {
            return Vec::new();
        }
        // SAFETY: the CPU registry exports this name with the ggml_backend_dev_get_extra_bufts_t
        // signature (ggml-backend.h); a non-null pointer has that type.
        let get: sys::ggml_backend_dev_get_extra_bufts_t = unsafe {
            std::mem::transmute::<*mut c_void, sys::ggml_backend_dev_get_extra_bufts_t>(f)
        };
        let Some(get) = get else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // SAFETY: the function returns a static, null-terminated array of buffer types.
        unsafe {
            let mut p = get(dev);
            while !p.is_null() && !(*p).is_null() {
                out.push(Self(*p));
                p = p.add(1);
            }
        }
        out
    }

    /// The CPU's repacking buffer type (`CPU_REPACK`), if this build has one.
    pub fn cpu_repack() -> Option<Self> {
        Self::cpu_extra()
            .into_iter()
            .find(|b| b.name() == REPACK_BUFFER_NAME)
    }

    /// The buffer type's name.
    pub fn name(&self) -> String {
        // SAFETY: buffer type names are static NUL-terminated strings.
        unsafe { CStr::from_ptr(sys::ggml_backend_buft_name(self.0)) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The name of the CPU backend's repacking buffer type.
pub const REPACK_BUFFER_NAME: &str = "CPU_REPACK";

/// Sets a tensor's name (for ggml's own messages).
///
/// # Safety
/// `t` must be a live tensor.
pub(crate) unsafe fn set_name(t: *mut sys::ggml_tensor, name: &str) {
    let name = CString::new(name).expect("tensor names have no NUL");
    // SAFETY: the caller guarantees t; ggml copies at most 63 bytes of the name.
    unsafe { sys::ggml_set_name(t, name.as_ptr()) };
}

/// Returns `p` as non-null, or the error naming the ggml call that failed.
pub(crate) fn non_null<T>(p: *mut T, what: &'static str) -> Result<NonNull<T>, Error> {
    NonNull::new(p).ok_or(Error::Ggml(what))
}
