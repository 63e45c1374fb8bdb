//! Process-wide initialisation, logging and device listing.
//!
//! [`init`] runs once per process (every constructor calls it): it routes
//! llama.cpp's and ggml's logs to [`tracing`] (target `llama_cpp`), and installs
//! a ggml abort hook that reports the failed assertion through the log instead
//! of forking a debugger to print a backtrace.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use llamacpp_sys as sys;

use crate::raw::backend::RawDevice;
/// Kept here for the modules that read C strings through it.
pub(crate) use crate::raw::backend::cstr_lossy;

static LOGS_ON: AtomicBool = AtomicBool::new(true);
static LOGS_TO_STDERR: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The partial line being assembled on this thread (ggml logs in pieces).
    static LINE: RefCell<(i32, String)> = const { RefCell::new((0, String::new())) };
    /// Active captures, innermost last: lines at `min_level` or above logged on this
    /// thread are appended to every one of them (nested captures all see the line).
    static CAPTURE: RefCell<Vec<(i32, String)>> = const { RefCell::new(Vec::new()) };
}

/// Initialises the llama.cpp backend once for the process. Safe to call often.
pub fn init() {
    crate::raw::backend::init();
}

/// Turns forwarding of llama.cpp's log lines to `tracing` on or off (on by default).
/// Lines captured for error messages are kept either way.
pub fn set_logging(on: bool) {
    LOGS_ON.store(on, Ordering::Relaxed);
}

/// Also writes every forwarded log line to standard error, for programs without a `tracing`
/// subscriber (a command-line tool's `--verbose`). Off by default; [`set_logging`]`(false)`
/// silences both.
///
/// ```
/// llamacpp::backend::log_to_stderr(true);
/// # llamacpp::backend::log_to_stderr(false);
/// ```
pub fn log_to_stderr(on: bool) {
    LOGS_TO_STDERR.store(on, Ordering::Relaxed);
}

/// Runs `f`, returning its result and the warning/error lines llama.cpp logged
/// on this thread meanwhile (for error messages of NULL-returning calls).
pub(crate) fn capture_log<R>(f: impl FnOnce() -> R) -> (R, String) {
    capture(sys::GGML_LOG_LEVEL_WARN as i32, f)
}

/// Runs `f`, returning its result and every line of level INFO or above that
/// llama.cpp logged on this thread meanwhile (e.g. the buffer sizes a new
/// context reports). Logs still go to `tracing` as usual.
pub fn capture_info_log<R>(f: impl FnOnce() -> R) -> (R, String) {
    capture(sys::GGML_LOG_LEVEL_INFO as i32, f)
}

fn capture<R>(min_level: i32, f: impl FnOnce() -> R) -> (R, String) {
    init();
    /// Ends the capture even when `f` panics: a buffer left on the stack would collect
    /// every later line logged on the thread, without bound.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            let _ = CAPTURE.try_with(|c| c.borrow_mut().pop());
        }
    }
    CAPTURE.with(|c| c.borrow_mut().push((min_level, String::new())));
    let pop = Pop;
    let r = f();
    let log = CAPTURE
        .with(|c| c.borrow_mut().last_mut().map(|(_, s)| std::mem::take(s)))
        .unwrap_or_default();
    drop(pop);
    (r, log.trim_end().to_string())
}

/// ggml's abort hook (through `raw::backend`, which catches panics): the failed
/// assertion goes to the log instead of a debugger's backtrace.
pub(crate) fn on_abort(msg: &str) {
    tracing::error!(target: "llama_cpp", "ggml abort: {msg}");
    eprintln!("ggml abort: {msg}");
}

/// llama.cpp's and ggml's log hook (through `raw::backend`, which catches panics): `text`
/// is a piece of a line, assembled per thread.
pub(crate) fn on_log(level: sys::ggml_log_level, text: &str) {
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        if level != sys::GGML_LOG_LEVEL_CONT as sys::ggml_log_level {
            line.0 = level as i32;
        }
        line.1.push_str(text);
        while let Some(pos) = line.1.find('\n') {
            let full: String = line.1.drain(..=pos).collect();
            emit(line.0, full.trim_end());
        }
    });
}

fn emit(level: i32, msg: &str) {
    if msg.is_empty() {
        return;
    }
    CAPTURE.with(|c| {
        for (_, buf) in c.borrow_mut().iter_mut().filter(|(min, _)| level >= *min) {
            buf.push_str(msg);
            buf.push('\n');
        }
    });
    if !LOGS_ON.load(Ordering::Relaxed) {
        return;
    }
    if LOGS_TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("{msg}");
    }
    match level as u32 {
        sys::GGML_LOG_LEVEL_ERROR => tracing::error!(target: "llama_cpp", "{msg}"),
        sys::GGML_LOG_LEVEL_WARN => tracing::warn!(target: "llama_cpp", "{msg}"),
        sys::GGML_LOG_LEVEL_INFO => tracing::info!(target: "llama_cpp", "{msg}"),
        _ => tracing::debug!(target: "llama_cpp", "{msg}"),
    }
}

/// What kind of device a backend device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// A discrete GPU.
    Gpu,
    /// An integrated GPU.
    IntegratedGpu,
    /// An accelerator (BLAS, ...).
    Accelerator,
    /// Anything else.
    Other,
}

/// A compute device ggml can use.
#[derive(Debug, Clone)]
pub struct Device {
    /// Short name (`CPU`, `CUDA0`, `Vulkan0`, ...).
    pub name: String,
    /// Human-readable description.
    pub description: String,
    /// Its kind.
    pub kind: DeviceKind,
    /// Free memory in bytes, as the backend reports it.
    pub memory_free: usize,
    /// Total memory in bytes.
    pub memory_total: usize,
}

/// The devices of every backend compiled in, and those of the RPC servers added with
/// `rpc::add_rpc_server` (whose memory figures each cost a round trip to the server).
///
/// ```
/// let devices = llamacpp::backend::devices();
/// assert!(devices.iter().any(|d| d.kind == llamacpp::backend::DeviceKind::Cpu));
/// ```
pub fn devices() -> Vec<Device> {
    init();
    (0..RawDevice::count())
        .filter_map(RawDevice::get)
        .map(describe)
        .collect()
}

/// The [`Device`] description of a registered device (its memory query may be a network
/// round trip for an RPC device).
#[cfg(feature = "rpc")]
pub(crate) fn device_from_raw(dev: RawDevice) -> Device {
    describe(dev)
}

/// The [`Device`] description of a registered device.
fn describe(dev: RawDevice) -> Device {
    let (free, total) = dev.memory();
    let kind = match dev.dev_type() {
        sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceKind::Cpu,
        sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceKind::Gpu,
        sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceKind::IntegratedGpu,
        sys::GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceKind::Accelerator,
        _ => DeviceKind::Other,
    };
    Device {
        name: dev.name(),
        description: dev.description(),
        kind,
        memory_free: free,
        memory_total: total,
    }
}

/// llama.cpp's system-info line (SIMD features and backends compiled in).
pub fn system_info() -> String {
    init();
    crate::raw::backend::system_info()
}

/// The commit string of the ggml library this process runs (`ggml_commit`).
///
/// With a shared llama.cpp, this is the library the loader found at run time, not
/// necessarily the one the crate was built against: a process can tell which build it
/// got. `llamacpp-sys`'s patched builds end it in `+p` and a hash of the patch series.
///
/// ```
/// assert!(!llamacpp::backend::build_commit().is_empty());
/// ```
pub fn build_commit() -> String {
    crate::raw::backend::build_commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_capture_leaves_no_buffer_behind() {
        for _ in 0..3 {
            let r = std::panic::catch_unwind(|| capture_info_log(|| panic!("in the closure")));
            assert!(r.is_err());
        }
        assert_eq!(CAPTURE.with(|c| c.borrow().len()), 0);
        let (_, outer) = capture_log(|| {
            let ((), inner) = capture_info_log(|| emit(sys::GGML_LOG_LEVEL_WARN as i32, "w"));
            assert_eq!(inner, "w");
        });
        assert_eq!(outer, "w");
        assert_eq!(CAPTURE.with(|c| c.borrow().len()), 0);
    }
}
