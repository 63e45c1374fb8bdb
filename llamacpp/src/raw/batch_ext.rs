//! [`RawBatchExt`]: an owner of llama.cpp's extended batch (`llama_batch_ext`), as the MTP draft context
//! needs it: every entry carries a token id *and* a hidden-state row, which the classic
//! `llama_batch` of [`Batch`](crate::Batch) cannot express.

use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::context::RawContext;
use crate::error::{Error, Result};

/// An extended batch for one context, holding entries of sequence 0.
///
/// llama.cpp sizes it from the context (`n_batch` entries of `n_embd_out`-wide rows for an MTP
/// context) and keeps a pointer to that context's memory, so it must be freed before the
/// context: the owner declares it as an earlier field.
pub(crate) struct RawBatchExt {
    ptr: NonNull<sys::llama_batch_ext>,
    n_embd: usize,
    len: usize,
    capacity: usize,
    /// The indices of the entries with an output (logits), in order.
    outputs: Vec<i32>,
}

impl RawBatchExt {
    /// A batch for `ctx`, with state rows of `n_embd` values.
    ///
    /// # Safety
    /// `ctx` outlives the batch (its owner drops the batch first).
    pub(crate) unsafe fn new(ctx: &RawContext<'_>, n_embd: usize) -> Result<RawBatchExt> {
        let capacity = ctx.n_batch() as usize;
        // SAFETY: valid context, which the caller keeps alive longer; the batch copies what
        // it needs from the context.
        let ptr = unsafe { sys::llama_batch_ext_init(ctx.as_ptr()) };
        let ptr = NonNull::new(ptr).ok_or(Error::Null {
            what: "llama_batch_ext_init",
            log: String::new(),
        })?;
        Ok(RawBatchExt {
            ptr,
            n_embd,
            len: 0,
            capacity,
            outputs: Vec::new(),
        })
    }

    pub(crate) fn as_ptr(&mut self) -> *mut sys::llama_batch_ext {
        self.ptr.as_ptr()
    }

    /// The indices of the entries with an output, in order.
    pub(crate) fn outputs(&self) -> &[i32] {
        &self.outputs
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn clear(&mut self) {
        // SAFETY: we own the batch.
        unsafe { sys::llama_batch_ext_clear(self.ptr.as_ptr()) };
        self.len = 0;
        self.outputs.clear();
    }

    /// Appends `token` at `pos` of sequence 0 with hidden-state row `state`; returns its index.
    pub(crate) fn push(
        &mut self,
        token: i32,
        pos: i32,
        state: &[f32],
        output: bool,
    ) -> Result<i32> {
        if self.len >= self.capacity {
            return Err(Error::OutOfRange {
                what: "MTP batch size",
                value: self.len as i64 + 1,
                expected: format!("<= n_batch = {}", self.capacity),
            });
        }
        if state.len() != self.n_embd {
            return Err(Error::Speculative(format!(
                "hidden state has {} values, the MTP head takes {}",
                state.len(),
                self.n_embd
            )));
        }
        if pos < 0 {
            return Err(Error::OutOfRange {
                what: "position",
                value: i64::from(pos),
                expected: ">= 0".into(),
            });
        }
        let b = self.ptr.as_ptr();
        // SAFETY: we own the batch; sequence 0 exists in every context; llama.cpp checks the
        // token id against the vocabulary and returns a negative code instead of storing it.
        let idx = unsafe { sys::llama_batch_ext_add_token(b, 0, token) };
        if idx < 0 {
            // The entry may have been appended before the id was refused: start over.
            self.clear();
            return Err(match idx {
                -2 => Error::Speculative(format!("token {token} is not in the vocabulary")),
                _ => Error::InvalidBatch,
            });
        }
        self.len += 1;
        let embd = sys::llama_embd {
            data: state.as_ptr(),
            n_rows: 1,
            n_embd: state.len(),
        };
        // SAFETY: `idx` was just returned for this batch; `pos` points to one position (a
        // token entry reads one); llama.cpp copies the `state` row into the batch before
        // returning, so the slice only has to live for the call.
        let ok = unsafe {
            sys::llama_batch_ext_set_pos(b, idx, &pos)
                && sys::llama_batch_ext_set_embd_token(b, idx, embd)
                && sys::llama_batch_ext_set_output_logits(b, idx, output)
        };
        if !ok {
            self.clear();
            return Err(Error::InvalidBatch);
        }
        if output {
            self.outputs.push(idx);
        }
        Ok(idx)
    }
}

impl Drop for RawBatchExt {
    fn drop(&mut self) {
        // SAFETY: we own the batch; freeing it does not touch the context.
        unsafe { sys::llama_batch_ext_free(self.ptr.as_ptr()) }
    }
}

// SAFETY: the batch is plain host data owned by this value (plus a pointer to the context's
// memory that it only reads inside llama_process, which the owner calls with `&mut self`).
unsafe impl Send for RawBatchExt {}
