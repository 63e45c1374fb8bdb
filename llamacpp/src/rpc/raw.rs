//! The ggml-rpc functions this crate calls, looked up by name in the "RPC" backend
//! registry's proc-address table (never linked by symbol: the upstream build lacks the
//! patched ones, and one binary must run against either library).
//!
//! The signatures are those of the project's C API contract for ggml-rpc (patches
//! 0026-0029; `add_server` and `start_server` exist upstream with the same types).

use std::ffi::{CStr, c_char, c_void};
use std::sync::OnceLock;

use llamacpp_sys as sys;

/// `ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint)`.
pub(super) type AddServerFn = unsafe extern "C" fn(*const c_char) -> sys::ggml_backend_reg_t;
/// `void ggml_backend_rpc_start_server(endpoint, cache_dir, n_threads, n_devices, devices)`.
pub(super) type StartServerFn =
    unsafe extern "C" fn(*const c_char, *const c_char, usize, usize, *mut sys::ggml_backend_dev_t);
/// `void ggml_backend_rpc_wire_version(uint8_t * major, uint8_t * minor, uint8_t * patch)`.
pub(super) type WireVersionFn = unsafe extern "C" fn(*mut u8, *mut u8, *mut u8);
/// `void ggml_backend_rpc_set_timeout(uint32_t timeout_ms)`.
pub(super) type SetTimeoutFn = unsafe extern "C" fn(u32);
/// `bool ggml_backend_rpc_endpoint_failed(const char * endpoint)`.
pub(super) type EndpointFailedFn = unsafe extern "C" fn(*const c_char) -> bool;
/// `void * ggml_backend_rpc_server_new(endpoint, cache_dir, n_threads, n_devices, devices)`.
pub(super) type ServerNewFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    usize,
    usize,
    *mut sys::ggml_backend_dev_t,
) -> *mut c_void;
/// `uint16_t ggml_backend_rpc_server_port(void * server)`.
pub(super) type ServerPortFn = unsafe extern "C" fn(*mut c_void) -> u16;
/// `void ggml_backend_rpc_server_{run,stop,free}(void * server)`.
pub(super) type ServerFn = unsafe extern "C" fn(*mut c_void);

/// The functions the linked library offers (`None`: absent, as on the upstream build).
pub(super) struct Procs {
    /// The "RPC" registry itself (NULL when the library was built without GGML_RPC).
    pub reg: sys::ggml_backend_reg_t,
    pub add_server: Option<AddServerFn>,
    pub start_server: Option<StartServerFn>,
    pub wire_version: Option<WireVersionFn>,
    pub set_timeout: Option<SetTimeoutFn>,
    pub endpoint_failed: Option<EndpointFailedFn>,
    pub server_new: Option<ServerNewFn>,
    pub server_port: Option<ServerPortFn>,
    pub server_run: Option<ServerFn>,
    pub server_stop: Option<ServerFn>,
    pub server_free: Option<ServerFn>,
}

// SAFETY: the registry pointer is ggml's static "RPC" registry, which lives as long as the
// process and is only passed back to ggml; the rest are plain function pointers.
unsafe impl Send for Procs {}
// SAFETY: as above; nothing is written after `procs` initialises it.
unsafe impl Sync for Procs {}

/// Looks the functions up once (the registry and its table never change).
pub(super) fn procs() -> &'static Procs {
    static PROCS: OnceLock<Procs> = OnceLock::new();
    PROCS.get_or_init(|| {
        crate::backend::init();
        // SAFETY: the backend registry is initialised; the name is NUL-terminated.
        let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
        // SAFETY: each name below is paired with the function type the C API contract (or
        // upstream's ggml-rpc.h, for add/start_server) gives it.
        unsafe {
            Procs {
                reg,
                add_server: lookup(reg, c"ggml_backend_rpc_add_server"),
                start_server: lookup(reg, c"ggml_backend_rpc_start_server"),
                wire_version: lookup(reg, c"ggml_backend_rpc_wire_version"),
                set_timeout: lookup(reg, c"ggml_backend_rpc_set_timeout"),
                endpoint_failed: lookup(reg, c"ggml_backend_rpc_endpoint_failed"),
                server_new: lookup(reg, c"ggml_backend_rpc_server_new"),
                server_port: lookup(reg, c"ggml_backend_rpc_server_port"),
                server_run: lookup(reg, c"ggml_backend_rpc_server_run"),
                server_stop: lookup(reg, c"ggml_backend_rpc_server_stop"),
                server_free: lookup(reg, c"ggml_backend_rpc_server_free"),
            }
        }
    })
}

/// One entry of the registry's proc-address table as a typed function pointer.
///
/// # Safety
/// `F` must be an `unsafe extern "C" fn` type matching the C function named `name`.
unsafe fn lookup<F: Copy>(reg: sys::ggml_backend_reg_t, name: &CStr) -> Option<F> {
    if reg.is_null() || size_of::<F>() != size_of::<*mut c_void>() {
        return None;
    }
    // SAFETY: `reg` is a registered backend registry; the name is NUL-terminated; the
    // table returns NULL for names it does not know.
    let p = unsafe { sys::ggml_backend_reg_get_proc_address(reg, name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `F` is a function pointer type of the same size as `p` (checked above) whose
    // signature matches the C function, per this function's contract; `p` is non-NULL.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

/// The HELLO version this library speaks and expects (upstream's 7.0.0 when the library
/// does not say).
pub(super) fn wire_version() -> (u8, u8, u8) {
    let Some(f) = procs().wire_version else {
        return (7, 0, 0);
    };
    let (mut major, mut minor, mut patch) = (0u8, 0u8, 0u8);
    // SAFETY: the contract's signature; the three pointers are valid for one byte each.
    unsafe { f(&mut major, &mut minor, &mut patch) };
    (major, minor, patch)
}
