//! [`RawThreadPool`]: the ggml CPU thread pool a context may own (`ContextParams::thread_pool`).

use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::params::ThreadPoolOptions;

/// An owned ggml CPU thread pool (`ggml_threadpool_new`), freed on drop.
pub(crate) struct RawThreadPool {
    ptr: NonNull<sys::ggml_threadpool>,
    n_threads: i32,
}

impl RawThreadPool {
    /// A pool of `n_threads` workers (checked by `ContextParams::validate`: 1 to 512).
    pub(crate) fn new(n_threads: i32, options: &ThreadPoolOptions) -> Result<RawThreadPool> {
        // SAFETY: takes an integer and returns a plain struct by value.
        let mut tpp = unsafe { sys::ggml_threadpool_params_default(n_threads) };
        tpp.poll = options.poll;
        tpp.strict_cpu = options.strict_cpu;
        for (slot, &on) in tpp.cpumask.iter_mut().zip(&options.cpu_mask) {
            *slot = on;
        }
        // SAFETY: `tpp` is a valid parameter block that ggml only reads during the call; the
        // pool is freed by Drop.
        let ptr = unsafe { sys::ggml_threadpool_new(&mut tpp) };
        let ptr = NonNull::new(ptr).ok_or(Error::Null {
            what: "ggml_threadpool_new",
            log: String::new(),
        })?;
        Ok(RawThreadPool { ptr, n_threads })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::ggml_threadpool {
        self.ptr.as_ptr()
    }

    /// The number of workers.
    pub(crate) fn n_threads(&self) -> i32 {
        self.n_threads
    }
}

impl Drop for RawThreadPool {
    fn drop(&mut self) {
        // SAFETY: we own the pool; a context it was attached to is freed first (its owner
        // declares the pool after the context, or `RawContext::attach_threadpool`'s contract).
        unsafe { sys::ggml_threadpool_free(self.ptr.as_ptr()) }
    }
}
