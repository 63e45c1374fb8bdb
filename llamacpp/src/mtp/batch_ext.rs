//! A safe owner of llama.cpp's extended batch (`llama_batch_ext`), as the MTP draft context
//! needs it: every entry carries a token id *and* a hidden-state row, which the classic
//! `llama_batch` of [`Batch`](crate::Batch) cannot express.

use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::error::{Error, Result};

/// An extended batch for one context, holding entries of sequence 0.
///
/// llama.cpp sizes it from the context (`n_batch` entries of `n_embd_out`-wide rows for an MTP
/// context) and keeps a pointer to that context's memory, so it must be freed before the
/// context: the owner declares it as an earlier field.
pub(super) struct BatchExt {
    ptr: NonNull<sys::llama_batch_ext>,
    n_embd: usize,
    len: usize,
    capacity: usize,
}

impl BatchExt {
    /// # Safety
    /// `ctx` must be a valid context that outlives the batch.
    pub(super) unsafe fn new(ctx: *mut sys::llama_context, n_embd: usize) -> Result<BatchExt> {
        // SAFETY: valid context per the contract.
        let capacity = unsafe { sys::llama_n_batch(ctx) } as usize;
        // SAFETY: as above; the batch copies what it needs from the context.
        let ptr = unsafe { sys::llama_batch_ext_init(ctx) };
        let ptr = NonNull::new(ptr).ok_or(Error::Null {
            what: "llama_batch_ext_init",
            log: String::new(),
        })?;
        Ok(BatchExt {
            ptr,
            n_embd,
            len: 0,
            capacity,
        })
    }

    pub(super) fn as_ptr(&mut self) -> *mut sys::llama_batch_ext {
        self.ptr.as_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(super) fn clear(&mut self) {
        // SAFETY: we own the batch.
        unsafe { sys::llama_batch_ext_clear(self.ptr.as_ptr()) };
        self.len = 0;
    }

    /// Appends `token` at `pos` of sequence 0 with hidden-state row `state`; returns its index.
    pub(super) fn push(
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
        Ok(idx)
    }
}

impl Drop for BatchExt {
    fn drop(&mut self) {
        // SAFETY: we own the batch; freeing it does not touch the context.
        unsafe { sys::llama_batch_ext_free(self.ptr.as_ptr()) }
    }
}

// SAFETY: the batch is plain host data owned by this value (plus a pointer to the context's
// memory that it only reads inside llama_process, which the owner calls with `&mut self`).
unsafe impl Send for BatchExt {}
