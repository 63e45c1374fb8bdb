//! [`RawMtpContext`]: an MTP-type `llama_context` with the extended batch it runs and the
//! eval callback that captures the MTP head's output hidden state (`h_nextn`).

use std::ffi::{CStr, c_void};

use llamacpp_sys as sys;

use super::batch_ext::RawBatchExt;
use super::context::RawContext;
use crate::error::{Error, Result, check_decode};
use crate::mtp::MtpModel;

/// Where the eval callback copies the MTP head's output hidden state (`h_nextn`).
struct Capture {
    /// Whether the current decode should copy it (only draft steps that chain on it).
    want: bool,
    n_embd: usize,
    /// The rows of the last copy: `n_embd` floats per output.
    rows: Vec<f32>,
    /// Whether the current decode delivered the rows.
    got: bool,
}

/// The name llama.cpp gives the MTP head's final hidden state (`cb(cur, "h_nextn", -1)`).
const H_NEXTN: &[u8] = b"h_nextn";

/// ggml's eval callback on the MTP context: asks for the `h_nextn` node only (so the rest of
/// the graph is computed as without a callback) and copies it once computed.
extern "C" fn capture_trampoline(t: *mut sys::ggml_tensor, ask: bool, data: *mut c_void) -> bool {
    if t.is_null() || data.is_null() {
        return !ask;
    }
    let r = crate::panic::catch("mtp capture", || {
        // SAFETY: `data` is the context's boxed `Capture`, alive as long as the context; the
        // scheduler calls back on the thread running the decode, which holds
        // `&mut RawMtpContext`.
        let cap = unsafe { &mut *data.cast::<Capture>() };
        // SAFETY: ggml passes a valid tensor for the duration of the call; its name is a
        // NUL-terminated array.
        let name = unsafe { CStr::from_ptr((*t).name.as_ptr()) };
        let wanted = cap.want && name.to_bytes() == H_NEXTN;
        if ask {
            return wanted;
        }
        if wanted {
            // SAFETY: as above; the tensor has just been computed.
            cap.got = unsafe { copy_rows(t, cap.n_embd, &mut cap.rows) };
        }
        true
    });
    // A panic (impossible short of allocation failure) must not unwind into C; the decode
    // that ran the graph reports it.
    r.unwrap_or(!ask)
}

/// Copies an F32 `[n_embd, rows]` tensor into `out`; false (nothing copied) for any other shape.
///
/// # Safety
/// `t` must be a valid, computed tensor.
unsafe fn copy_rows(t: *mut sys::ggml_tensor, n_embd: usize, out: &mut Vec<f32>) -> bool {
    // SAFETY: valid tensor per the contract.
    let tensor = unsafe { &*t };
    // SAFETY: as above.
    let contiguous = unsafe { sys::ggml_is_contiguous(t) };
    if tensor.type_ != sys::GGML_TYPE_F32
        || tensor.ne[0] as usize != n_embd
        || !contiguous
        || tensor.buffer.is_null()
    {
        return false;
    }
    // SAFETY: as above.
    let bytes = unsafe { sys::ggml_nbytes(t) };
    let n = bytes / std::mem::size_of::<f32>();
    out.clear();
    out.resize(n, 0.0);
    // SAFETY: the tensor lives in a backend buffer (checked non-null: ggml asserts on it) and
    // has `bytes` bytes; `out` has room for exactly that many.
    unsafe { sys::ggml_backend_tensor_get(t, out.as_mut_ptr().cast(), 0, bytes) };
    true
}

/// An MTP-type context over an [`MtpModel`], sequence 0 only, with its extended batch and
/// hidden-state capture.
pub(crate) struct RawMtpContext<'m> {
    // Field order is drop order: the batch points at the context, which points at `capture`.
    batch: RawBatchExt,
    ctx: RawContext<'m>,
    capture: Box<Capture>,
    model: &'m MtpModel,
    n_ctx: u32,
}

impl<'m> RawMtpContext<'m> {
    /// An MTP context with `params` (made from `context::default_params`; its context type and
    /// eval callback are set here), for state rows of `n_embd` values.
    pub(crate) fn new(
        model: &'m MtpModel,
        mut params: sys::llama_context_params,
        n_embd: usize,
    ) -> Result<Self> {
        let mut capture = Box::new(Capture {
            want: false,
            n_embd,
            rows: Vec::new(),
            got: false,
        });
        params.ctx_type = sys::LLAMA_CONTEXT_TYPE_MTP;
        params.cb_eval = Some(capture_trampoline);
        params.cb_eval_user_data = (&mut *capture as *mut Capture).cast();
        let guard = crate::context::adapters_read(model);
        // SAFETY: the model has its NextN layers loaded (holding an `MtpModel` proves it),
        // which is what llama.cpp's MTP graph asserts; the callback data is boxed and outlives
        // the context (declared after it); the adapter lock is held for the call.
        let ctx = unsafe {
            RawContext::init(model.model(), params, "llama_init_from_model (MTP context)")
        };
        drop(guard);
        let ctx = ctx?;
        // SAFETY: the context outlives the batch (field order).
        let batch = unsafe { RawBatchExt::new(&ctx, n_embd)? };
        Ok(RawMtpContext {
            batch,
            n_ctx: params.n_ctx,
            ctx,
            capture,
            model,
        })
    }

    /// The context (memory operations, outputs).
    pub(crate) fn ctx(&self) -> &RawContext<'m> {
        &self.ctx
    }

    pub(crate) fn ctx_mut(&mut self) -> &mut RawContext<'m> {
        &mut self.ctx
    }

    /// The batch the next [`process`](Self::process) runs.
    pub(crate) fn batch(&mut self) -> &mut RawBatchExt {
        &mut self.batch
    }

    /// Takes the hidden-state rows the last [`process`](Self::process) captured, when it
    /// produced exactly one row of `n_embd` values.
    pub(crate) fn take_captured(&mut self) -> Option<Vec<f32>> {
        if !self.capture.got || self.capture.rows.len() != self.capture.n_embd {
            return None;
        }
        Some(std::mem::take(&mut self.capture.rows))
    }

    /// Runs the batch (`capture`: also copy the head's output hidden state), after checking
    /// that it is not empty and stays within the context.
    pub(crate) fn process(&mut self, capture: bool) -> Result<()> {
        if self.batch.len() == 0 {
            return Err(Error::EmptyBatch);
        }
        let n_past = self.ctx.memory_seq_pos_max(0)?.max(-1) + 1;
        let end = i64::from(n_past) + self.batch.len() as i64;
        if end > i64::from(self.n_ctx) {
            return Err(Error::OutOfRange {
                what: "MTP context position",
                value: end,
                expected: format!("<= n_ctx = {}", self.n_ctx),
            });
        }
        self.capture.want = capture;
        self.capture.got = false;
        self.ctx.outputs.clear();
        self.ctx.pending = self.batch.outputs().to_vec();
        let guard = crate::context::adapters_read(self.model);
        let ctx = self.ctx.as_ptr();
        let batch = self.batch.as_ptr();
        let mut rc = Ok(0);
        let panicked = crate::panic::guarded(|| {
            // Each entry has an n_embd_out state row, so none lacks the hidden state the MTP
            // graph reads; an exception thrown inside becomes an Err in the shim.
            // SAFETY: the batch belongs to this context, holds at most n_batch entries (ids
            // checked by llama.cpp) and positions that fit the context (checked above).
            rc = unsafe { super::shim::process(ctx, sys::LLAMA_PROCESS_TYPE_DECODE, batch) };
        });
        drop(guard);
        self.capture.want = false;
        let rc = rc?;
        panicked?;
        check_decode(rc)?;
        self.ctx.commit_outputs();
        Ok(())
    }
}
