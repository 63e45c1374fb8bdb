//! The ggml backend devices this build registers (the CPU always; Vulkan, CUDA, Metal when
//! `llamacpp-sys` is built with their feature), and a backend instance on one of them that
//! computes graphs. Every op in this crate can run on any device: its tensors are allocated in
//! the device's buffer type and uploaded and read back through ggml-backend, so the same test
//! compares every device with the reference.

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::Error;
use crate::ggml::BufferType;

/// A registered ggml backend device (`ggml_backend_dev_t`).
#[derive(Clone, Copy)]
pub struct Device(sys::ggml_backend_dev_t);

// SAFETY: devices are static descriptors owned by ggml's backend registry, alive for the whole
// program; the functions used here only read them and are callable from any thread.
unsafe impl Send for Device {}
// SAFETY: as above; nothing is mutated through this handle.
unsafe impl Sync for Device {}

impl Device {
    /// Every device the backend registry knows, in registry order.
    pub fn all() -> Vec<Self> {
        // SAFETY: the registry functions have no preconditions; indices below the count are valid
        // and give non-null devices.
        let n = unsafe { sys::ggml_backend_dev_count() };
        (0..n)
            // SAFETY: i is below the device count.
            .map(|i| unsafe { sys::ggml_backend_dev_get(i) })
            .filter(|d| !d.is_null())
            .map(Self)
            .collect()
    }

    /// The CPU device (every build has one).
    pub fn cpu() -> Self {
        // SAFETY: lookup by type has no preconditions; it returns null when there is none.
        let d = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
        assert!(!d.is_null(), "this build of ggml has no CPU device");
        Self(d)
    }

    /// The device's name (`"CPU"`, `"Vulkan0"`, `"CUDA0"`, ...).
    pub fn name(&self) -> String {
        // SAFETY: device names are NUL-terminated strings that live as long as the device.
        unsafe { CStr::from_ptr(sys::ggml_backend_dev_name(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// The device's description (the GPU's or the CPU's model name).
    pub fn description(&self) -> String {
        // SAFETY: as for the name.
        unsafe { CStr::from_ptr(sys::ggml_backend_dev_description(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Whether this is the CPU device (the one the other devices are compared with).
    pub fn is_cpu(&self) -> bool {
        // SAFETY: a valid device.
        unsafe { sys::ggml_backend_dev_type(self.0) == sys::GGML_BACKEND_DEVICE_TYPE_CPU }
    }

    /// Whether this is a device of ggml's Vulkan backend.
    pub fn is_vulkan(&self) -> bool {
        self.name().starts_with("Vulkan")
    }

    /// Whether this is a device of ggml's CUDA backend.
    pub fn is_cuda(&self) -> bool {
        self.name().starts_with("CUDA")
    }

    /// The device's default buffer type (device memory for a GPU).
    pub fn buffer_type(&self) -> BufferType {
        // SAFETY: a valid device; the buffer type it returns is static.
        BufferType::from_raw(unsafe { sys::ggml_backend_dev_buffer_type(self.0) })
    }

    /// Whether the device says it can compute `op` as built (types, shapes, strides, op params).
    ///
    /// # Safety
    /// `op` must be a live tensor whose sources are live.
    pub(crate) unsafe fn supports_op(&self, op: *const sys::ggml_tensor) -> bool {
        // SAFETY: the caller guarantees op; the device is valid.
        unsafe { sys::ggml_backend_dev_supports_op(self.0, op) }
    }

    /// Fails with [`Error::DeviceUnsupported`] unless the device supports every node of `graph`
    /// that computes something (views, permutes and reshapes are bookkeeping only).
    ///
    /// # Safety
    /// `graph` must be a live graph whose nodes are live tensors.
    pub(crate) unsafe fn check_graph(&self, graph: *mut sys::ggml_cgraph) -> Result<(), Error> {
        // SAFETY: the caller guarantees the graph; indices stay below its node count.
        unsafe {
            for i in 0..sys::ggml_graph_n_nodes(graph) {
                let node = sys::ggml_graph_node(graph, i);
                let op = (*node).op;
                let bookkeeping = matches!(
                    op,
                    sys::GGML_OP_NONE
                        | sys::GGML_OP_VIEW
                        | sys::GGML_OP_PERMUTE
                        | sys::GGML_OP_RESHAPE
                        | sys::GGML_OP_TRANSPOSE
                );
                if !bookkeeping && !self.supports_op(node) {
                    let desc = CStr::from_ptr(sys::ggml_op_desc(node))
                        .to_string_lossy()
                        .into_owned();
                    return Err(Error::DeviceUnsupported {
                        device: self.name(),
                        op: desc,
                    });
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A backend instance on one device, computing graphs (with a fixed number of threads on the
/// CPU; the count is ignored elsewhere).
pub(crate) struct Backend(NonNull<sys::ggml_backend>);

impl Backend {
    pub(crate) fn new(device: Device, threads: usize) -> Result<Self, Error> {
        // SAFETY: a valid device; null parameters ask for the defaults; null is returned on
        // failure.
        let b = unsafe { sys::ggml_backend_dev_init(device.0, std::ptr::null()) };
        let b = NonNull::new(b).ok_or(Error::Ggml("ggml_backend_dev_init failed"))?;
        // SAFETY: b is a live backend; the thread count is only set on a CPU backend.
        unsafe {
            if sys::ggml_backend_is_cpu(b.as_ptr()) {
                sys::ggml_backend_cpu_set_n_threads(b.as_ptr(), threads.max(1) as i32);
            }
        }
        Ok(Self(b))
    }

    /// Computes `graph` and waits for it.
    ///
    /// # Safety
    /// `graph` must be a live graph whose tensors are allocated in buffers this backend can use
    /// (its device's buffer type, or host memory for the CPU) and whose inputs are initialised.
    pub(crate) unsafe fn compute(&self, graph: *mut sys::ggml_cgraph) -> Result<(), Error> {
        // SAFETY: the caller guarantees the graph; the backend is live. graph_compute waits
        // for the device before it returns.
        let status = unsafe { sys::ggml_backend_graph_compute(self.0.as_ptr(), graph) };
        if status == sys::GGML_STATUS_SUCCESS {
            Ok(())
        } else {
            Err(Error::Ggml("ggml_backend_graph_compute failed"))
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // SAFETY: the backend came from ggml_backend_dev_init and is freed once.
        unsafe { sys::ggml_backend_free(self.0.as_ptr()) }
    }
}
