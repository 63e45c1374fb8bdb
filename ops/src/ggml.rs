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

/// A ggml tensor type (`GGML_TYPE_*`).
pub type GgmlType = sys::ggml_type;

/// The name ggml gives `ty` (`"q4_0"`, `"q4_K"`, ...).
pub fn type_name(ty: GgmlType) -> String {
    assert!(ty < sys::GGML_TYPE_COUNT, "not a ggml type: {ty}");
    // SAFETY: ggml_type_name returns a static NUL-terminated string for any type below
    // GGML_TYPE_COUNT, which the assertion checked.
    unsafe { CStr::from_ptr(sys::ggml_type_name(ty)) }
        .to_string_lossy()
        .into_owned()
}

/// Bytes of one row of `n` values of type `ty` (`n` a multiple of the block size).
pub fn row_size(ty: GgmlType, n: usize) -> usize {
    assert!(ty < sys::GGML_TYPE_COUNT, "not a ggml type: {ty}");
    // SAFETY: arithmetic on the type's static traits; the assertion keeps `ty` in range.
    unsafe { sys::ggml_row_size(ty, n as i64) }
}

/// Quantizes `src` (rows of `n_per_row` values) to `ty` with ggml's reference quantizer.
pub fn quantize(ty: GgmlType, src: &[f32], n_per_row: usize) -> Result<Vec<u8>, Error> {
    assert!(ty < sys::GGML_TYPE_COUNT, "not a ggml type: {ty}");
    // SAFETY: reads the static type traits of a valid type.
    let (blck, needs_imatrix) = unsafe {
        (
            sys::ggml_blck_size(ty) as usize,
            sys::ggml_quantize_requires_imatrix(ty),
        )
    };
    if needs_imatrix {
        return Err(Error::Unsupported(format!(
            "{} needs an importance matrix",
            type_name(ty)
        )));
    }
    if n_per_row == 0 || !n_per_row.is_multiple_of(blck) || !src.len().is_multiple_of(n_per_row) {
        return Err(Error::Shape(format!(
            "{} values in rows of {n_per_row} for {} (block {blck})",
            src.len(),
            type_name(ty)
        )));
    }
    let nrows = src.len() / n_per_row;
    let mut out = vec![0u8; nrows * row_size(ty, n_per_row)];
    // SAFETY: `src` holds nrows*n_per_row floats and `out` exactly nrows rows of `ty`;
    // ggml_quantize_chunk writes only those rows, and a null imatrix is allowed for types
    // that do not require one (checked above).
    let written = unsafe {
        sys::ggml_quantize_chunk(
            ty,
            src.as_ptr(),
            out.as_mut_ptr().cast::<c_void>(),
            0,
            nrows as i64,
            n_per_row as i64,
            std::ptr::null(),
        )
    };
    assert_eq!(written, out.len(), "ggml_quantize_chunk size");
    Ok(out)
}

/// Dequantizes `data` (whole rows of `n_per_row` values of `ty`) with the type's `to_float`.
pub fn dequantize(ty: GgmlType, data: &[u8], n_per_row: usize) -> Result<Vec<f32>, Error> {
    assert!(ty < sys::GGML_TYPE_COUNT, "not a ggml type: {ty}");
    let rs = row_size(ty, n_per_row);
    if rs == 0 || !data.len().is_multiple_of(rs) {
        return Err(Error::Shape(format!(
            "{} bytes are not whole rows of {n_per_row} {}",
            data.len(),
            type_name(ty)
        )));
    }
    // SAFETY: ggml_get_type_traits returns a pointer to a static table entry for a valid type.
    let traits = unsafe { &*sys::ggml_get_type_traits(ty) };
    let to_float = traits
        .to_float
        .ok_or_else(|| Error::Unsupported(format!("{} has no to_float", type_name(ty))))?;
    let n = data.len() / rs * n_per_row;
    let mut out = vec![0f32; n];
    // SAFETY: `data` holds n/n_per_row whole rows of `ty`, i.e. n values, and `out` has room
    // for n floats; to_float reads and writes exactly that.
    unsafe { to_float(data.as_ptr().cast::<c_void>(), out.as_mut_ptr(), n as i64) };
    Ok(out)
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
