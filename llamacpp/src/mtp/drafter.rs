//! [`MtpDrafter`]: the MTP-type context that runs the NextN block, and the eval callback that
//! captures the block's output hidden state for chained drafts.

use std::ffi::{CStr, c_void};
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::batch_ext::BatchExt;
use super::model::MtpModel;
use crate::backend;
use crate::context::Context;
use crate::error::{Error, Result, check_decode};
use crate::params::ContextParams;
use crate::vocab::Token;

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
        // SAFETY: `data` is the drafter's boxed `Capture`, alive as long as the context; the
        // scheduler calls back on the thread running the decode, which holds `&mut MtpDrafter`.
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

/// An owned MTP-type `llama_context`.
struct RawCtx(NonNull<sys::llama_context>);

impl Drop for RawCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; the batch that points at it was dropped first.
        unsafe { sys::llama_free(self.0.as_ptr()) }
    }
}

/// The MTP draft context: the model's NextN block with its own KV cache, sequence 0.
///
/// Made by [`MtpSpeculative::new`](super::MtpSpeculative::new); exposed for callers that
/// drive their own loop.
pub struct MtpDrafter<'m> {
    // Field order is drop order: the batch points at the context, which points at `capture`.
    batch: BatchExt,
    ctx: RawCtx,
    capture: Box<Capture>,
    model: &'m MtpModel,
    n_embd: usize,
    n_ctx: u32,
}

// SAFETY: the context, batch and capture buffer are used from one thread at a time (every
// method that touches them takes `&mut self`); `&MtpModel` is Send because `Model: Sync`.
unsafe impl Send for MtpDrafter<'_> {}

impl std::fmt::Debug for MtpDrafter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtpDrafter")
            .field("n_embd", &self.n_embd)
            .field("n_ctx", &self.n_ctx)
            .finish_non_exhaustive()
    }
}

impl<'m> MtpDrafter<'m> {
    /// An MTP context over `model` sized like `target` (context length, batch sizes,
    /// threads, cache types, flash attention), for one sequence.
    pub fn new(model: &'m MtpModel, target: &Context<'_>, like: &ContextParams) -> Result<Self> {
        Self::from_raw(model, target, &like.raw)
    }

    pub(super) fn from_raw(
        model: &'m MtpModel,
        target: &Context<'_>,
        l: &sys::llama_context_params,
    ) -> Result<Self> {
        backend::init();
        if !std::ptr::eq(target.model(), model.model()) {
            return Err(Error::Speculative(
                "the target context runs another model than the MTP head's".into(),
            ));
        }
        let n_embd = usize::try_from(model.n_embd()).unwrap_or(0);
        let mut capture = Box::new(Capture {
            want: false,
            n_embd,
            rows: Vec::new(),
            got: false,
        });
        // SAFETY: returns a plain struct by value.
        let mut raw = unsafe { sys::llama_context_default_params() };
        raw.ctx_type = sys::LLAMA_CONTEXT_TYPE_MTP;
        raw.n_ctx = target.n_ctx();
        raw.n_batch = target.n_batch();
        raw.n_ubatch = target.n_ubatch();
        raw.n_seq_max = 1;
        raw.n_threads = l.n_threads;
        raw.n_threads_batch = l.n_threads_batch;
        raw.type_k = l.type_k;
        raw.type_v = l.type_v;
        raw.flash_attn_type = l.flash_attn_type;
        raw.offload_kqv = l.offload_kqv;
        raw.op_offload = l.op_offload;
        raw.no_perf = l.no_perf;
        // The head's output state is read through the eval callback: it is not the context's
        // embedding output (the MTP graph sets none), and an embeddings context would also
        // force an output for every entry.
        raw.embeddings = false;
        raw.cb_eval = Some(capture_trampoline);
        raw.cb_eval_user_data = (&mut *capture as *mut Capture).cast();
        let guard = crate::context::adapters_read(model);
        // The model is valid for 'm and has its NextN layers loaded (MtpModel), which is what
        // llama.cpp's MTP graph asserts; the callback data is boxed and outlives the context
        // (declared after it in `MtpDrafter`).
        let init = || {
            // SAFETY: see above: valid model with MTP layers, callback data outlives the context.
            unsafe { sys::llama_init_from_model(model.as_ptr(), raw) }
        };
        let (ptr, log) = backend::capture_log(init);
        drop(guard);
        let ctx = RawCtx(NonNull::new(ptr).ok_or(Error::Null {
            what: "llama_init_from_model (MTP context)",
            log,
        })?);
        // SAFETY: the context is valid and outlives the batch (field order).
        let batch = unsafe { BatchExt::new(ctx.0.as_ptr(), n_embd)? };
        Ok(MtpDrafter {
            batch,
            ctx,
            capture,
            model,
            n_embd,
            n_ctx: target.n_ctx(),
        })
    }

    fn ptr(&self) -> *mut sys::llama_context {
        self.ctx.0.as_ptr()
    }

    /// The model's hidden size: the length of every state row.
    pub fn n_embd(&self) -> usize {
        self.n_embd
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        // SAFETY: valid context and its memory.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ptr()), true) }
    }

    /// One past the last position held (0 when empty).
    pub fn n_past(&self) -> i32 {
        // SAFETY: valid context and its memory.
        let p = unsafe { sys::llama_memory_seq_pos_max(sys::llama_get_memory(self.ptr()), 0) };
        p.max(-1) + 1
    }

    /// Drops every position from `pos` on (the MTP cache is plain attention, so it can).
    pub fn truncate(&mut self, pos: i32) -> Result<()> {
        if pos < 0 {
            return Err(Error::OutOfRange {
                what: "position",
                value: i64::from(pos),
                expected: ">= 0".into(),
            });
        }
        // SAFETY: valid context and memory; sequence 0 exists.
        let ok = unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ptr()), 0, pos, -1) };
        if ok {
            Ok(())
        } else {
            Err(Error::Speculative(format!(
                "the MTP cache could not drop positions from {pos}"
            )))
        }
    }

    /// Appends entries at positions `start..`: `tokens[i]` with the target's hidden state of
    /// the position before it, `states[i * n_embd..][..n_embd]`. No outputs: this only fills
    /// the MTP cache so later drafts attend to the whole sequence.
    pub fn feed(&mut self, start: i32, tokens: &[Token], states: &[f32]) -> Result<()> {
        if states.len() != tokens.len() * self.n_embd {
            return Err(Error::Speculative(format!(
                "{} tokens need {} state values, got {}",
                tokens.len(),
                tokens.len() * self.n_embd,
                states.len()
            )));
        }
        let cap = self.batch.capacity().max(1);
        let mut pos = start;
        for (chunk, rows) in tokens.chunks(cap).zip(states.chunks(cap * self.n_embd)) {
            self.batch.clear();
            for (t, h) in chunk.iter().zip(rows.chunks(self.n_embd)) {
                self.batch.push(t.id(), pos, h, false)?;
                pos += 1;
            }
            self.process(false)?;
        }
        Ok(())
    }

    /// Decodes (`token` at `pos`, `state`) and returns the head's greedy prediction for
    /// `pos + 1`; with `chain`, also its output hidden state, the state of the next step.
    pub fn step(
        &mut self,
        token: Token,
        pos: i32,
        state: &[f32],
        chain: bool,
    ) -> Result<(Token, Option<Vec<f32>>)> {
        self.batch.clear();
        self.batch.push(token.id(), pos, state, true)?;
        self.process(chain)?;
        let n_vocab = self.model.vocab().n_tokens();
        // SAFETY: valid context; the decode just produced one output (-1 = the last one);
        // llama.cpp returns NULL rather than failing for a bad index.
        let p = unsafe { sys::llama_get_logits_ith(self.ptr(), -1) };
        if p.is_null() {
            return Err(Error::NoOutput(-1));
        }
        // SAFETY: an output row holds n_vocab floats until the next decode (`&mut self`).
        let logits = unsafe { std::slice::from_raw_parts(p, n_vocab.max(0) as usize) };
        let next = Token::from_candidate(argmax(logits) as i32);
        let h = if chain {
            if !self.capture.got || self.capture.rows.len() != self.n_embd {
                return Err(Error::Speculative(
                    "the MTP head's hidden state was not produced".into(),
                ));
            }
            Some(std::mem::take(&mut self.capture.rows))
        } else {
            None
        };
        Ok((next, h))
    }

    fn process(&mut self, capture: bool) -> Result<()> {
        if self.batch.len() == 0 {
            return Err(Error::EmptyBatch);
        }
        let end = self.n_past() as i64 + self.batch.len() as i64;
        if end > i64::from(self.n_ctx) {
            return Err(Error::OutOfRange {
                what: "MTP context position",
                value: end,
                expected: format!("<= n_ctx = {}", self.n_ctx),
            });
        }
        self.capture.want = capture;
        self.capture.got = false;
        let guard = crate::context::adapters_read(self.model);
        let ctx = self.ptr();
        let batch = self.batch.as_ptr();
        // The batch belongs to the context and holds at most n_batch entries, each with a token
        // id checked by llama.cpp, one position and an n_embd_out state row (so no entry lacks
        // the hidden state the MTP graph reads).
        // Valid context and batch, as described just above (an exception thrown inside
        // becomes an Err in the shim).
        let mut rc = Ok(0);
        let panicked = crate::panic::guarded(|| {
            // SAFETY: as described just above.
            rc = unsafe { crate::boundary::process(ctx, sys::LLAMA_PROCESS_TYPE_DECODE, batch) };
        });
        drop(guard);
        self.capture.want = false;
        let rc = rc?;
        panicked?;
        check_decode(rc)
    }
}

/// The index of the largest value (the first one on ties, as llama.cpp's greedy sampler).
pub(super) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
