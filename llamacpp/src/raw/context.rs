//! [`RawContext`]: an owned `llama_context`, its getters, its runs and its outputs.
//!
//! The memory and state operations are in `raw/memory.rs`.

use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::threadpool::RawThreadPool;
use crate::backend;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::vocab::Token;

/// Which graph [`RawContext::run`] runs.
#[derive(Clone, Copy)]
pub(crate) enum Graph {
    Decode,
    Encode,
}

/// An owned `llama_context` over a model borrowed for `'m`, freed on drop.
///
/// Besides the handle it keeps what the checks of its methods need and llama.cpp does not
/// report: the sequence bound, whether the KV cache is one stream, the attached pool's size,
/// and the batch indices that have outputs from the last run.
pub(crate) struct RawContext<'m> {
    pub(super) ptr: NonNull<sys::llama_context>,
    /// `llama_n_seq_max`: every sequence id the memory and state calls take is below it.
    pub(super) n_seq_max: u32,
    /// One KV stream for every sequence (`kv_unified`); without it llama.cpp can copy only
    /// whole sequences between streams.
    pub(super) kv_unified: bool,
    /// The workers of the attached pool: llama.cpp must not be asked to compute with more.
    pool_threads: Option<i32>,
    /// Batch indices with outputs from the last run, in order.
    pub(super) outputs: Vec<i32>,
    /// The output indices of the batch being run, made readable by `commit_outputs`.
    pub(super) pending: Vec<i32>,
    _model: PhantomData<&'m Model>,
}

// SAFETY: a llama_context may be used from any one thread at a time, and every method that
// changes it takes `&mut self`; the model it borrows is `Sync`.
unsafe impl Send for RawContext<'_> {}

impl Drop for RawContext<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the context. Its owner keeps what it points at (callback data, a
        // thread pool, LoRA adapters, an extended batch) alive until after this drop.
        unsafe { sys::llama_free(self.ptr.as_ptr()) }
    }
}

/// llama.cpp's default context parameters.
pub(crate) fn default_params() -> sys::llama_context_params {
    // SAFETY: takes nothing and returns a plain struct by value.
    unsafe { sys::llama_context_default_params() }
}

/// The ids of a token slice, without copying.
pub(crate) fn token_ids(tokens: &[Token]) -> &[i32] {
    // SAFETY: Token is #[repr(transparent)] over i32, so the slices have the same layout
    // and length; the lifetime is carried over.
    unsafe { std::slice::from_raw_parts(tokens.as_ptr().cast::<i32>(), tokens.len()) }
}

/// A `llama_batch` over `ids` as one run of sequence 0 (positions continue the sequence; only
/// the last token has an output). It points into `ids` without borrowing it: only
/// [`RawContext::run`], whose caller keeps `ids` alive, reads it.
pub(crate) fn batch_one(ids: &[i32]) -> sys::llama_batch {
    // SAFETY: llama_batch_get_one only stores the pointer and length in the struct it
    // returns; nothing is read or written through them here.
    unsafe { sys::llama_batch_get_one(ids.as_ptr().cast_mut(), ids.len() as i32) }
}

impl<'m> RawContext<'m> {
    /// `llama_init_from_model`, with the log lines it wrote in the error when it fails
    /// (`what` names the call there).
    ///
    /// # Safety
    /// The callback user data in `params` (`abort_callback_data`, `cb_eval_user_data`) stays
    /// valid, at a fixed address, until the context is dropped, and only the matching
    /// trampolines read it. The caller holds `model`'s adapter lock for the call (for writing
    /// when the parameters make llama.cpp rewrite the model's `n_ctx_train`, see
    /// `context::yarn_rewrites_n_ctx_train`). For an MTP context, the model has its NextN
    /// layers loaded (llama.cpp asserts it).
    pub(crate) unsafe fn init(
        model: &'m Model,
        params: sys::llama_context_params,
        what: &'static str,
    ) -> Result<RawContext<'m>> {
        let kv_unified = params.kv_unified;
        let (ptr, log) = backend::capture_log(|| {
            // SAFETY: the model is valid for 'm; the parameters are plain data passed by
            // value; the caller keeps the callback data alive and holds the adapter lock.
            unsafe { sys::llama_init_from_model(model.as_ptr(), params) }
        });
        let ptr = NonNull::new(ptr).ok_or(Error::Null { what, log })?;
        // SAFETY: valid context.
        let n_seq_max = unsafe { sys::llama_n_seq_max(ptr.as_ptr()) };
        Ok(RawContext {
            ptr,
            n_seq_max,
            kv_unified,
            pool_threads: None,
            outputs: Vec::new(),
            pending: Vec::new(),
            _model: PhantomData,
        })
    }

    /// Computes with `pool`'s workers from now on (generation and batch alike).
    ///
    /// # Safety
    /// `pool` outlives the context: its owner drops it after this `RawContext`.
    pub(crate) unsafe fn attach_threadpool(&mut self, pool: &RawThreadPool) {
        // SAFETY: valid context and pool; the caller keeps the pool alive longer.
        unsafe { sys::llama_attach_threadpool(self.as_ptr(), pool.as_ptr(), pool.as_ptr()) }
        self.pool_threads = Some(pool.n_threads());
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }

    /// The model, as the context reports it.
    fn model_ptr(&self) -> *const sys::llama_model {
        // SAFETY: valid context; the call returns the model it was made from (valid for 'm).
        unsafe { sys::llama_get_model(self.as_ptr()) }
    }

    pub(crate) fn n_ctx(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_ctx(self.as_ptr()) }
    }

    pub(crate) fn n_batch(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_batch(self.as_ptr()) }
    }

    pub(crate) fn n_ubatch(&self) -> u32 {
        // SAFETY: valid context.
        unsafe { sys::llama_n_ubatch(self.as_ptr()) }
    }

    pub(crate) fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    pub(crate) fn causal_attn(&self) -> bool {
        // SAFETY: valid context.
        unsafe { sys::llama_get_causal_attn(self.as_ptr()) }
    }

    /// Whether the context has an output buffer: a vocabulary-only model gets a context
    /// without backends, scheduler, memory or outputs, whose first decode dereferences them.
    pub(crate) fn has_output_buffer(&self) -> bool {
        // SAFETY: valid context; with nothing queued the call only returns the pointer.
        !unsafe { sys::llama_get_logits(self.as_ptr()) }.is_null()
    }

    /// The model's vocabulary size: the length of a logits row.
    fn n_vocab(&self) -> usize {
        // SAFETY: valid model (see `model_ptr`); the vocabulary is owned by it.
        let n = unsafe { sys::llama_vocab_n_tokens(sys::llama_model_get_vocab(self.model_ptr())) };
        n.max(0) as usize
    }

    /// The length of a per-token embedding row (`n_embd_out`, not `n_embd`).
    fn n_embd_out(&self) -> usize {
        // SAFETY: valid model (see `model_ptr`).
        unsafe { sys::llama_model_n_embd_out(self.model_ptr()) }.max(0) as usize
    }

    /// The model's sliding-window size (0 without sliding-window layers).
    pub(crate) fn n_swa(&self) -> i32 {
        // SAFETY: valid model (see `model_ptr`).
        unsafe { sys::llama_model_n_swa(self.model_ptr()) }
    }

    /// `Err` unless `seq` names one of the context's sequences (llama.cpp asserts on others).
    pub(crate) fn check_seq(&self, seq: i32) -> Result<()> {
        if seq < 0 || seq as u32 >= self.n_seq_max {
            return Err(Error::OutOfRange {
                what: "sequence id",
                value: i64::from(seq),
                expected: format!("0..{}", self.n_seq_max),
            });
        }
        Ok(())
    }

    /// Sets the threads for generation and batch processing after checking them: 1 to 512
    /// (ggml's limit), and with an attached pool at most its size (with OpenMP ggml indexes
    /// the pool's worker array by the count asked for).
    pub(crate) fn set_n_threads(&mut self, n_gen: i32, n_batch: i32) -> Result<()> {
        crate::params::check_threads("n_threads_gen", n_gen)?;
        crate::params::check_threads("n_threads_batch", n_batch)?;
        if let Some(max) = self.pool_threads
            && n_gen.max(n_batch) > max
        {
            return Err(Error::OutOfRange {
                what: "threads",
                value: i64::from(n_gen.max(n_batch)),
                expected: format!("<= {max}, the thread pool's size"),
            });
        }
        // SAFETY: valid context; both counts checked above.
        unsafe { sys::llama_set_n_threads(self.as_ptr(), n_gen, n_batch) };
        Ok(())
    }

    /// Runs `batch` through the decoder or the encoder: the return code, or
    /// [`Error::Cpp`] when llama.cpp threw. Forgets the last run's outputs; `outputs`
    /// become readable through [`commit_outputs`](Self::commit_outputs).
    ///
    /// # Safety
    /// The arrays `batch` points into stay valid and unchanged for the call, and the batch
    /// passed the checks that keep llama.cpp from aborting or reading out of bounds
    /// (`Context::check_batch`/`check_rows` and its position checks): at least one and at most
    /// `n_batch` tokens (`n_ubatch` without causal attention, and for encode), every token id
    /// below the vocabulary size, every sequence id below `n_seq_max`, outputs within
    /// `n_outputs_max`, positions within a learned position table. `outputs` are the batch
    /// indices it marks for output, in order.
    pub(crate) unsafe fn run(
        &mut self,
        batch: sys::llama_batch,
        graph: Graph,
        outputs: Vec<i32>,
    ) -> Result<i32> {
        self.outputs.clear();
        self.pending = outputs;
        let ptr = self.as_ptr();
        // SAFETY: valid context; the caller's guarantees for the batch.
        unsafe {
            match graph {
                Graph::Decode => super::shim::decode(ptr, batch),
                Graph::Encode => super::shim::encode(ptr, batch),
            }
        }
    }

    /// Makes the outputs of the last run readable: its caller found that it succeeded.
    pub(crate) fn commit_outputs(&mut self) {
        self.outputs = std::mem::take(&mut self.pending);
    }

    /// Batch indices that have outputs from the last run.
    pub(crate) fn outputs(&self) -> &[i32] {
        &self.outputs
    }

    /// `i` when it names an output of the last run (negative: from the end of the outputs),
    /// the only indices llama.cpp's getters accept (debug builds assert).
    pub(crate) fn check_output(&self, i: i32) -> Result<i32> {
        let n = self.outputs.len() as i32;
        let ok = if i < 0 {
            i >= -n
        } else {
            self.outputs.contains(&i)
        };
        if ok { Ok(i) } else { Err(Error::NoOutput(i)) }
    }

    /// The logits row of output `i` of the last run, `n_vocab` floats.
    pub(crate) fn logits(&self, i: i32) -> Result<&[f32]> {
        let i = self.check_output(i)?;
        let n_vocab = self.n_vocab();
        // SAFETY: `i` names an output of the last run, so llama.cpp has a row of n_vocab floats.
        let p = unsafe { sys::llama_get_logits_ith(self.as_ptr(), i) };
        if p.is_null() {
            return Err(Error::NoOutput(i));
        }
        // SAFETY: the row holds n_vocab floats and lives until the next run (which needs &mut self).
        Ok(unsafe { std::slice::from_raw_parts(p, n_vocab) })
    }

    /// The embedding row of output `i` of the last run, `n_embd_out` floats (pooling `None`;
    /// NULL, so `NoOutput`, without embeddings).
    pub(crate) fn embeddings(&self, i: i32) -> Result<&[f32]> {
        let i = self.check_output(i)?;
        // SAFETY: valid context; `i` names an output of the last run.
        let p = unsafe { sys::llama_get_embeddings_ith(self.as_ptr(), i) };
        if p.is_null() {
            return Err(Error::NoOutput(i));
        }
        // SAFETY: the row has n_embd_out floats and lives until the next run.
        Ok(unsafe { std::slice::from_raw_parts(p, self.n_embd_out()) })
    }

    /// The pooled embedding of sequence `seq` (pooling other than `None`).
    pub(crate) fn seq_embeddings(&self, seq: i32) -> Result<&[f32]> {
        self.check_seq(seq)?;
        // SAFETY: valid context and sequence id.
        let p = unsafe { sys::llama_get_embeddings_seq(self.as_ptr(), seq) };
        if p.is_null() {
            return Err(Error::NoOutput(seq));
        }
        // Pooled embeddings have n_embd_out floats (rank pooling: n_cls_out, fewer).
        // SAFETY: valid context and model (see `model_ptr`).
        let rank =
            unsafe { sys::llama_pooling_type(self.as_ptr()) } == sys::LLAMA_POOLING_TYPE_RANK;
        let n = if rank {
            // SAFETY: as above.
            (unsafe { sys::llama_model_n_cls_out(self.model_ptr()) } as usize).max(1)
        } else {
            self.n_embd_out()
        };
        // SAFETY: the buffer holds `n` floats until the next run.
        Ok(unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// Waits for pending backend work (a run may return before a GPU finishes).
    pub(crate) fn synchronize(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_synchronize(self.as_ptr()) }
    }

    /// On a model with RPC devices: after a run returned `rc`, waits for its outputs and
    /// checks the connections to `endpoints` (`Err`: the context must not be used again).
    #[cfg(feature = "rpc")]
    pub(crate) fn check_remote(&mut self, endpoints: &[String], rc: i32) -> Result<()> {
        if rc == 0 {
            // The outputs are read here, which is when a lost last GRAPH_COMPUTE shows.
            self.synchronize();
        }
        crate::rpc::check_after_run(endpoints, rc)
    }

    pub(crate) fn perf(&self) -> sys::llama_perf_context_data {
        // SAFETY: valid context; returns a plain struct by value.
        unsafe { sys::llama_perf_context(self.as_ptr()) }
    }

    pub(crate) fn reset_perf(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_perf_context_reset(self.as_ptr()) }
    }
}
