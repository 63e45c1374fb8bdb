//! The ggml-rpc functions this crate calls, looked up by name in the "RPC" backend
//! registry's proc-address table (never linked by symbol: the upstream build lacks the
//! patched ones, and one binary must run against either library).
//!
//! The signatures are those of the project's C API contract for ggml-rpc (patches
//! 0026-0029; `add_server` and `start_server` exist upstream with the same types).
//!
//! This is the rpc part of the raw layer: the rest of `rpc` calls the safe functions
//! below ([`add_server`], [`endpoint_failed`], [`set_timeout`], [`wire_version`],
//! [`start_server`]) and the owning [`RawServer`], never a function pointer.

use std::ffi::{CStr, c_char, c_void};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use llamacpp_sys as sys;

use crate::raw::backend::RawDevice;

/// `ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint)`.
type AddServerFn = unsafe extern "C" fn(*const c_char) -> sys::ggml_backend_reg_t;
/// `void ggml_backend_rpc_start_server(endpoint, cache_dir, n_threads, n_devices, devices)`.
type StartServerFn =
    unsafe extern "C" fn(*const c_char, *const c_char, usize, usize, *mut sys::ggml_backend_dev_t);
/// `void ggml_backend_rpc_wire_version(uint8_t * major, uint8_t * minor, uint8_t * patch)`.
type WireVersionFn = unsafe extern "C" fn(*mut u8, *mut u8, *mut u8);
/// `void ggml_backend_rpc_set_timeout(uint32_t timeout_ms)`.
type SetTimeoutFn = unsafe extern "C" fn(u32);
/// `bool ggml_backend_rpc_endpoint_failed(const char * endpoint)`.
type EndpointFailedFn = unsafe extern "C" fn(*const c_char) -> bool;
/// `void * ggml_backend_rpc_server_new(endpoint, cache_dir, n_threads, n_devices, devices)`.
type ServerNewFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    usize,
    usize,
    *mut sys::ggml_backend_dev_t,
) -> *mut c_void;
/// `uint16_t ggml_backend_rpc_server_port(void * server)`.
type ServerPortFn = unsafe extern "C" fn(*mut c_void) -> u16;
/// `void ggml_backend_rpc_server_{run,stop,free}(void * server)`.
type ServerFn = unsafe extern "C" fn(*mut c_void);

/// The functions the linked library offers (`None`: absent, as on the upstream build).
struct Procs {
    /// The "RPC" registry itself (NULL when the library was built without GGML_RPC).
    reg: sys::ggml_backend_reg_t,
    add_server: Option<AddServerFn>,
    start_server: Option<StartServerFn>,
    wire_version: Option<WireVersionFn>,
    set_timeout: Option<SetTimeoutFn>,
    endpoint_failed: Option<EndpointFailedFn>,
    server_new: Option<ServerNewFn>,
    server_port: Option<ServerPortFn>,
    server_run: Option<ServerFn>,
    server_stop: Option<ServerFn>,
    server_free: Option<ServerFn>,
}

// SAFETY: the registry pointer is ggml's static "RPC" registry, which lives as long as the
// process and is only passed back to ggml; the rest are plain function pointers.
unsafe impl Send for Procs {}
// SAFETY: as above; nothing is written after `procs` initialises it.
unsafe impl Sync for Procs {}

/// Looks the functions up once (the registry and its table never change).
fn procs() -> &'static Procs {
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

/// Whether the library has the RPC backend: its registry and `add_server`.
pub(super) fn available() -> bool {
    let p = procs();
    !p.reg.is_null() && p.add_server.is_some()
}

/// Whether `endpoint_failed` exists (patched build).
pub(super) fn detects_failures() -> bool {
    procs().endpoint_failed.is_some()
}

/// Whether `set_timeout` exists (patched build).
pub(super) fn has_timeouts() -> bool {
    procs().set_timeout.is_some()
}

/// Whether the five stoppable-server functions exist (patched build): what
/// [`RawServer::bind`] needs.
pub(super) fn stoppable_server() -> bool {
    server_fns().is_some()
}

/// Whether upstream's blocking `start_server` exists (`false`: the library was built
/// without the RPC backend).
pub(super) fn can_start_server() -> bool {
    procs().start_server.is_some()
}

/// Sets the send/receive timeout of the connections opened after it (0: none); does
/// nothing where the library has no timeouts (upstream).
pub(super) fn set_timeout(timeout_ms: u32) {
    if let Some(f) = procs().set_timeout {
        // SAFETY: the contract's signature; it only stores the value.
        unsafe { f(timeout_ms) };
    }
}

/// Whether the connection to `endpoint` has failed (`false` where the library cannot
/// tell: upstream, which aborts on failures instead).
pub(super) fn endpoint_failed(endpoint: &CStr) -> bool {
    let Some(f) = procs().endpoint_failed else {
        return false;
    };
    // SAFETY: the contract's signature; the endpoint is NUL-terminated and only read.
    unsafe { f(endpoint.as_ptr()) }
}

/// The registry ggml made for one server endpoint (it keeps it, and its devices, for the
/// rest of the process: ggml caches it per endpoint and has no unregister).
pub(super) struct ServerRegistry(NonNull<sys::ggml_backend_reg>);

/// Connects to the server at `endpoint` (`host:port`) and returns its registry; `None`
/// when ggml could not (the reason went to ggml's log) or the library has no RPC backend.
pub(super) fn add_server(endpoint: &CStr) -> Option<ServerRegistry> {
    let p = procs();
    let f = p.add_server.filter(|_| !p.reg.is_null())?;
    // SAFETY: the contract's signature; the endpoint is NUL-terminated and copied by ggml.
    NonNull::new(unsafe { f(endpoint.as_ptr()) }).map(ServerRegistry)
}

impl ServerRegistry {
    /// Registers the registry with ggml (so that device lists and models see its devices)
    /// and returns its devices. Called once per endpoint (the caller's table of added
    /// endpoints guards it; a second registration would list the devices twice).
    pub(super) fn register(self) -> Vec<RawDevice> {
        let reg = self.0.as_ptr();
        // Registering hands ggml the pointer it already owns, kept for the process.
        // SAFETY: a registry `add_server` returned; its devices belong to a now registered
        // backend (`from_registered`'s precondition); `i` stays below the registry's count.
        unsafe {
            sys::ggml_backend_register(reg);
            (0..sys::ggml_backend_reg_dev_count(reg))
                .map(|i| RawDevice::from_registered(sys::ggml_backend_reg_dev_get(reg, i)))
                .collect()
        }
    }
}

/// The C arguments every server function takes (endpoint, cache directory, threads,
/// devices), checked by the caller.
pub(super) struct ServerArgs<'a> {
    pub endpoint: &'a CStr,
    pub cache_dir: Option<&'a CStr>,
    pub threads: usize,
    pub devices: &'a [RawDevice],
}

impl ServerArgs<'_> {
    /// Calls `f` with the C form of the arguments; they stay alive for the call.
    fn with_c<R>(
        &self,
        f: impl FnOnce(*const c_char, *const c_char, usize, usize, *mut sys::ggml_backend_dev_t) -> R,
    ) -> R {
        let mut devices: Vec<sys::ggml_backend_dev_t> =
            self.devices.iter().map(|d| d.as_ptr()).collect();
        let cache = self.cache_dir.map_or(std::ptr::null(), CStr::as_ptr);
        f(
            self.endpoint.as_ptr(),
            cache,
            self.threads,
            devices.len(),
            devices.as_mut_ptr(),
        )
    }
}

/// Serves on this thread through upstream's `start_server`, until the server fails (it
/// returns only then); `false` when the library has no RPC backend.
pub(super) fn start_server(args: &ServerArgs<'_>) -> bool {
    let Some(start) = procs().start_server else {
        return false;
    };
    // SAFETY: the signature of upstream's ggml-rpc.h; the strings are NUL-terminated
    // (cache NULL when absent) and the device array holds `len` registered devices
    // (`RawDevice`'s invariant), all alive for the call (which blocks while serving).
    args.with_c(|e, c, t, n, d| unsafe { start(e, c, t, n, d) });
    true
}

/// The stoppable-server functions, all five or none.
#[derive(Clone, Copy)]
struct ServerFns {
    new: ServerNewFn,
    port: ServerPortFn,
    run: ServerFn,
    stop: ServerFn,
    free: ServerFn,
}

fn server_fns() -> Option<ServerFns> {
    let p = procs();
    Some(ServerFns {
        new: p.server_new?,
        port: p.server_port?,
        run: p.server_run?,
        stop: p.server_stop?,
        free: p.server_free?,
    })
}

/// The C server object. The contract lets `stop` run on any thread, any number of times,
/// while `run` runs on another, and `free` on any thread once `run` has returned: it is
/// freed when the last of [`RawServer`] and [`ServerRun`] goes, which is after `run`
/// returned (a [`ServerRun`] holds it for the whole of `run`).
struct ServerObj {
    ptr: NonNull<c_void>,
    fns: ServerFns,
}

// SAFETY: see the type's comment: every function taking the pointer may be called from
// any thread.
unsafe impl Send for ServerObj {}
// SAFETY: as above; through `&ServerObj` only `stop` and `port` are called, which the
// contract allows at any time (`run` is reached only through the one `ServerRun`).
unsafe impl Sync for ServerObj {}

impl Drop for ServerObj {
    fn drop(&mut self) {
        // SAFETY: the last owner is gone, so `run` has returned or never started (the
        // `ServerRun` that alone calls it held a reference throughout); nothing uses the
        // server after this.
        unsafe { (self.fns.free)(self.ptr.as_ptr()) };
    }
}

/// An owned ggml-rpc server (patched build): bound and listening, served by
/// [`ServerRun::run`], stopped by [`RawServer::stop`], freed when both are dropped.
pub(super) struct RawServer(Arc<ServerObj>);

/// The one right to run a [`RawServer`] (the contract has one `run` per server).
pub(super) struct ServerRun(Arc<ServerObj>);

impl RawServer {
    /// Binds and listens (port 0: any free port); see [`NewServer`] for the outcomes.
    pub(super) fn bind(args: &ServerArgs<'_>) -> NewServer {
        let Some(fns) = server_fns() else {
            return NewServer::Unsupported;
        };
        // SAFETY: the contract's signature; the strings are NUL-terminated (cache NULL
        // when absent) and the device array holds `len` registered devices
        // (`RawDevice`'s invariant); all outlive the call.
        let ptr = args.with_c(|e, c, t, n, d| unsafe { (fns.new)(e, c, t, n, d) });
        match NonNull::new(ptr) {
            None => NewServer::Failed,
            Some(ptr) => {
                let obj = Arc::new(ServerObj { ptr, fns });
                NewServer::Started(RawServer(Arc::clone(&obj)), ServerRun(obj))
            }
        }
    }

    /// The port it is bound to.
    pub(super) fn port(&self) -> u16 {
        // SAFETY: a live server (freed only when the last owner goes).
        unsafe { (self.0.fns.port)(self.0.ptr.as_ptr()) }
    }

    /// Stops serving: closes the listening socket and the current client's connection,
    /// so that `run` returns once the call in progress ends. Any thread, any number of
    /// times, also before `run` starts.
    pub(super) fn stop(&self) {
        // SAFETY: a live server; stop may be called from any thread while run runs.
        unsafe { (self.0.fns.stop)(self.0.ptr.as_ptr()) };
    }
}

impl ServerRun {
    /// Serves clients one at a time until stopped (blocks).
    pub(super) fn run(self) {
        // SAFETY: a live server (this holds a reference until `run` has returned), and
        // the only `run` of it: `ServerRun` is made once per server and consumed here.
        unsafe { (self.0.fns.run)(self.0.ptr.as_ptr()) }
    }
}

/// What [`RawServer::bind`] gives.
pub(super) enum NewServer {
    /// The library has no stoppable server (upstream).
    Unsupported,
    /// `server_new` returned NULL (it logged why).
    Failed,
    /// The server, and the right to run it.
    Started(RawServer, ServerRun),
}
