//! A context's callbacks into Rust: the abort flag and the graph observer or timer, kept
//! at a fixed address for C, and the `extern "C"` trampolines llama.cpp calls.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use llamacpp_sys as sys;

use crate::backend::cstr_lossy;
use crate::params::{GraphCallback, GraphNode, SrcInfo};

/// Callback state that must stay at a fixed address while the context lives.
pub(crate) struct Callbacks {
    pub(crate) abort: Option<Arc<AtomicBool>>,
    pub(crate) graph: Option<GraphCallback>,
    /// When the scheduler asked about the node being timed (`time_graph` only).
    pub(crate) asked: Option<Instant>,
}

/// The context's [`Callbacks`], owned through a raw pointer rather than a `Box`: C keeps a
/// copy of the pointer for the context's life, and moving a `Box` (into the `Context`)
/// asserts unique access to its contents, which would invalidate that copy under Rust's
/// aliasing rules. The trampolines are the only code that reads the callbacks.
pub(crate) struct CallbackData(NonNull<Callbacks>);

impl CallbackData {
    pub(crate) fn new(callbacks: Callbacks) -> Self {
        Self(NonNull::from(Box::leak(Box::new(callbacks))))
    }

    /// The pointer handed to C as callback data.
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr().cast()
    }
}

impl Drop for CallbackData {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed only here; the
        // context that called into it is freed before (`Context` declares its `RawContext`
        // before this field, so it is dropped first), or was never created.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

pub(crate) extern "C" fn abort_trampoline(data: *mut c_void) -> bool {
    // SAFETY: `data` is the context's `Callbacks` (`CallbackData`), alive as long as the
    // context.
    let cb = unsafe { &*data.cast::<Callbacks>() };
    cb.abort.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// ggml's eval callback. With `ask` it answers whether the caller wants the node's
/// result, which makes the scheduler compute the graph up to that node and call back
/// with `!ask` after it; that call answers whether to go on computing.
pub(crate) extern "C" fn eval_trampoline(
    t: *mut sys::ggml_tensor,
    ask: bool,
    data: *mut c_void,
) -> bool {
    let timing = {
        // SAFETY: `data` is the context's `Callbacks` (`CallbackData`), alive as long as the
        // context; this shared borrow ends before the exclusive one below.
        let cb = unsafe { &*data.cast::<Callbacks>() };
        matches!(cb.graph, Some(GraphCallback::Time(_)))
    };
    // An observer never asks for data: the graph is computed exactly as without it. A timer
    // asks for every node, so each is computed alone. After a node, always go on.
    let answer = !ask || timing;
    if t.is_null() {
        return answer;
    }
    // A panic in the user's callback must not unwind into C (nor its payload's drop); the
    // decode that ran the graph reports it.
    crate::panic::catch("graph", || {
        // SAFETY: `data` is the context's `Callbacks` (`CallbackData`); the scheduler calls
        // this from the thread running decode, which holds `&mut Context`, so access is
        // exclusive.
        let cb = unsafe { &mut *data.cast::<Callbacks>() };
        match (cb.graph.as_mut(), ask) {
            (Some(GraphCallback::Observe(observer)), true) => {
                // SAFETY: ggml passes a valid tensor for the duration of the call.
                let node = unsafe { describe(t) };
                observer(&node);
            }
            // The last thing before the scheduler computes the node.
            (Some(GraphCallback::Time(_)), true) => cb.asked = Some(Instant::now()),
            (Some(GraphCallback::Time(timer)), false) => {
                let took = cb.asked.take().map(|at| at.elapsed()).unwrap_or_default();
                // SAFETY: as above.
                let node = unsafe { describe(t) };
                timer(&node, took);
            }
            _ => {}
        }
    });
    answer
}

/// # Safety
/// `t` must point to a valid tensor whose sources are valid or NULL.
unsafe fn describe(t: *mut sys::ggml_tensor) -> GraphNode {
    // SAFETY: valid tensor per the contract.
    unsafe {
        let tensor = &*t;
        let src0 = tensor.src[0];
        let srcs = tensor
            .src
            .iter()
            .take(3)
            .take_while(|s| !s.is_null())
            .map(|&s| {
                let src = &*s;
                SrcInfo {
                    name: cstr_lossy(src.name.as_ptr()),
                    bytes: sys::ggml_nbytes(s),
                    type_name: cstr_lossy(sys::ggml_type_name(src.type_)),
                    ne: src.ne,
                }
            })
            .collect();
        GraphNode {
            op: cstr_lossy(sys::ggml_op_desc(t)),
            name: cstr_lossy(tensor.name.as_ptr()),
            bytes: sys::ggml_nbytes(t),
            src0_contiguous: (!src0.is_null()).then(|| sys::ggml_is_contiguous(src0)),
            ne: tensor.ne,
            srcs,
        }
    }
}
