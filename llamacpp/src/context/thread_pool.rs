//! The ggml CPU thread pool a context may own (`ContextParams::thread_pool`).

use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::params::ThreadPoolOptions;

/// A ggml CPU thread pool that a context uses (`ContextParams::thread_pool`).
pub(super) struct ThreadPool(pub(super) NonNull<sys::ggml_threadpool>);

impl ThreadPool {
    pub(super) fn new(n_threads: i32, options: &ThreadPoolOptions) -> Result<ThreadPool> {
        // SAFETY: returns a plain struct by value.
        let mut tpp = unsafe { sys::ggml_threadpool_params_default(n_threads) };
        tpp.poll = options.poll;
        tpp.strict_cpu = options.strict_cpu;
        for (slot, &on) in tpp.cpumask.iter_mut().zip(&options.cpu_mask) {
            *slot = on;
        }
        // SAFETY: `tpp` is a valid parameter block; the pool is freed by Drop.
        let ptr = unsafe { sys::ggml_threadpool_new(&mut tpp) };
        NonNull::new(ptr).map(ThreadPool).ok_or(Error::Null {
            what: "ggml_threadpool_new",
            log: String::new(),
        })
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // SAFETY: we own the pool; the context that used it is freed first (see Context).
        unsafe { sys::ggml_threadpool_free(self.0.as_ptr()) }
    }
}
