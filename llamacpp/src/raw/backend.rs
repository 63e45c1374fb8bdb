//! Process-wide ggml/llama.cpp calls: backend initialisation with the log and abort
//! hooks, the device registry ([`RawDevice`]), and C strings.

use std::ffi::{CStr, c_char, c_void};
use std::sync::Once;

use llamacpp_sys as sys;

/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for the call.
pub(crate) unsafe fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Installs the abort and log hooks (which hand their text to `crate::backend`) and
/// initialises the backend, once per process.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: both callbacks are `extern "C"` functions that never unwind; setting
        // them is not thread-safe and `llama_backend_init` is once per process, which the
        // `Once` guarantees; the functions only store the pointers.
        unsafe {
            sys::ggml_set_abort_callback(Some(on_abort));
            sys::llama_log_set(Some(on_log), std::ptr::null_mut());
            sys::llama_backend_init();
        }
    });
}

extern "C" fn on_abort(message: *const c_char) {
    // The `tracing` subscriber is the application's code, and may panic.
    crate::panic::contain(|| {
        // SAFETY: ggml passes a NUL-terminated message buffer valid for this call.
        let msg = unsafe { cstr_lossy(message) };
        crate::backend::on_abort(&msg);
    });
}

extern "C" fn on_log(level: sys::ggml_log_level, text: *const c_char, _user: *mut c_void) {
    // The `tracing` subscriber is the application's code, and may panic.
    crate::panic::contain(|| {
        // SAFETY: ggml/llama pass a NUL-terminated string valid for this call.
        let text = unsafe { cstr_lossy(text) };
        crate::backend::on_log(level, &text);
    });
}

/// llama.cpp's system-info line.
pub(crate) fn system_info() -> String {
    // SAFETY: takes nothing and returns a pointer to a static NUL-terminated string.
    unsafe { cstr_lossy(sys::llama_print_system_info()) }
}

/// `ggml_commit`.
pub(crate) fn build_commit() -> String {
    // SAFETY: takes nothing and returns a pointer to a static NUL-terminated string.
    unsafe { cstr_lossy(sys::ggml_commit()) }
}

/// The host (CPU) buffer type, a static of ggml's.
pub(crate) fn cpu_buffer_type() -> sys::ggml_backend_buffer_type_t {
    // SAFETY: a constant getter without arguments.
    unsafe { sys::ggml_backend_cpu_buffer_type() }
}

/// A device of a registered backend: never NULL, and alive as long as the process
/// (ggml never unregisters devices).
#[derive(Clone, Copy)]
pub(crate) struct RawDevice(sys::ggml_backend_dev_t);

impl RawDevice {
    /// # Safety
    /// `dev` must be a device of a registered backend (not NULL).
    #[cfg(feature = "rpc")]
    pub(crate) unsafe fn from_registered(dev: sys::ggml_backend_dev_t) -> RawDevice {
        RawDevice(dev)
    }

    /// Number of registered devices.
    pub(crate) fn count() -> usize {
        // SAFETY: takes nothing; the registry initialises itself on first use.
        unsafe { sys::ggml_backend_dev_count() }
    }

    /// Device `i` of the registry (`None` past [`count`](Self::count)).
    pub(crate) fn get(i: usize) -> Option<RawDevice> {
        if i >= RawDevice::count() {
            return None;
        }
        // SAFETY: `i` is below the count; the result is a registered device (or NULL).
        let dev = unsafe { sys::ggml_backend_dev_get(i) };
        (!dev.is_null()).then_some(RawDevice(dev))
    }

    /// The registered device called `name` (`CUDA0`, ...), if any.
    pub(crate) fn by_name(name: &CStr) -> Option<RawDevice> {
        // SAFETY: a NUL-terminated name; NULL when unknown, else a registered device.
        let dev = unsafe { sys::ggml_backend_dev_by_name(name.as_ptr()) };
        (!dev.is_null()).then_some(RawDevice(dev))
    }

    /// The devices of a `llama_model_params.devices` list, or every registered device
    /// when it is NULL (llama.cpp then uses them all).
    ///
    /// # Safety
    /// `devices` must be NULL or point to a NULL-terminated array of registered devices.
    #[cfg(feature = "rpc")]
    pub(crate) unsafe fn list(devices: *const sys::ggml_backend_dev_t) -> Vec<RawDevice> {
        if devices.is_null() {
            return (0..RawDevice::count()).filter_map(RawDevice::get).collect();
        }
        let mut list = Vec::new();
        let mut p = devices;
        // SAFETY: per this function's contract the array is NULL-terminated, so every
        // element read up to the terminator is in bounds and a registered device.
        unsafe {
            while !(*p).is_null() {
                list.push(RawDevice(*p));
                p = p.add(1);
            }
        }
        list
    }

    /// The first registered CPU device, if any (what an RPC server serves by default).
    #[cfg(feature = "rpc")]
    pub(crate) fn cpu() -> Option<RawDevice> {
        // SAFETY: a device type constant; the registry initialises itself on first use;
        // NULL when there is none, else a registered device.
        let dev = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
        (!dev.is_null()).then_some(RawDevice(dev))
    }

    /// The name of the backend registry the device belongs to (`CPU`, `RPC[host:port]`,
    /// ...); `None` when ggml reports none.
    #[cfg(feature = "rpc")]
    pub(crate) fn reg_name(self) -> Option<String> {
        // SAFETY: a registered device (the type's invariant); its registry, when not
        // NULL, is registered too, and its name a NUL-terminated string it owns.
        unsafe {
            let reg = sys::ggml_backend_dev_backend_reg(self.0);
            (!reg.is_null()).then(|| cstr_lossy(sys::ggml_backend_reg_name(reg)))
        }
    }

    pub(crate) fn as_ptr(self) -> sys::ggml_backend_dev_t {
        self.0
    }

    pub(crate) fn name(self) -> String {
        // SAFETY: a registered device (the type's invariant); the name is a
        // NUL-terminated string the device owns.
        unsafe { cstr_lossy(sys::ggml_backend_dev_name(self.0)) }
    }

    pub(crate) fn description(self) -> String {
        // SAFETY: as for `name`.
        unsafe { cstr_lossy(sys::ggml_backend_dev_description(self.0)) }
    }

    pub(crate) fn dev_type(self) -> sys::ggml_backend_dev_type {
        // SAFETY: a registered device (the type's invariant).
        unsafe { sys::ggml_backend_dev_type(self.0) }
    }

    /// (free, total) memory in bytes; for an RPC device a round trip to its server.
    pub(crate) fn memory(self) -> (usize, usize) {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: a registered device (the type's invariant); both outputs are valid.
        unsafe { sys::ggml_backend_dev_memory(self.0, &mut free, &mut total) };
        (free, total)
    }

    /// The device's default buffer type, alive as long as the process.
    pub(crate) fn buffer_type(self) -> sys::ggml_backend_buffer_type_t {
        // SAFETY: a registered device (the type's invariant).
        unsafe { sys::ggml_backend_dev_buffer_type(self.0) }
    }
}

/// `ggml_abort` with `message` (printed as is, not as a format): the crash a failed
/// llama.cpp assertion is, for tests that want one (in a probe's child).
#[cfg(test)]
pub(crate) fn ggml_abort(file: &CStr, line: i32, message: &CStr) -> ! {
    // SAFETY: NUL-terminated file name and message; the format "%s" takes exactly the
    // one string argument given. ggml_abort does not return (it calls `abort`).
    unsafe { sys::ggml_abort(file.as_ptr(), line, c"%s".as_ptr(), message.as_ptr()) };
    unreachable!("ggml_abort returned")
}
