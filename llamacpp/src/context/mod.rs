//! [`Context`]: decoding state for one model (KV cache, outputs, threads).

use llamacpp_sys as sys;

mod adapters_lock;

pub(crate) use adapters_lock::{adapters_read, adapters_write};

use crate::backend;
use crate::batch::Batch;
use crate::error::{Error, Result, check_decode};
use crate::lora::LoraAdapter;
use crate::model::Model;
use crate::params::ContextParams;
use crate::raw::callbacks::{CallbackData, Callbacks, abort_trampoline, eval_trampoline};
use crate::raw::context::{Graph, RawContext, batch_one};
use crate::raw::threadpool::RawThreadPool;
use crate::vocab::Token;

/// Decoding state over a borrowed [`Model`]: KV cache/recurrent state and outputs.
///
/// A context is `Send` (move it to a worker thread) but not `Sync`: every
/// method that runs the model takes `&mut self`. Output slices borrow the
/// context, so they cannot outlive the next `decode`.
pub struct Context<'m> {
    // Field order is drop order: the context goes first, then what it points at.
    raw: RawContext<'m>,
    model: &'m Model,
    /// Unique for the process's lifetime: ties a [`SeqCheckpoint`](crate::SeqCheckpoint) to
    /// the context whose state format it has.
    id: u64,
    /// Read only by the C callbacks; must live (at a fixed address) as long as the context.
    #[allow(dead_code)]
    callbacks: CallbackData,
    /// The worker threads llama.cpp was given, if any; freed after `llama_free` (`raw` is
    /// declared first).
    #[allow(dead_code)]
    pool: Option<RawThreadPool>,
    n_batch: u32,
    n_ubatch: u32,
    n_seq_max: u32,
    /// The `n_outputs_max` the caller set (0 = n_batch); llama.cpp asserts that no
    /// decode reserves more output rows than this.
    n_outputs_max: u32,
    embeddings: bool,
    /// The LoRA adapters llama.cpp points at; dropped after `llama_free` (`raw` is declared
    /// first).
    pub(crate) loras: Vec<LoraAdapter<'m>>,
    /// Set when a decode/encode failed in a way that leaves the context's state unknown,
    /// so every later run is refused.
    poisoned: Option<Poison>,
}

/// Why a context refuses to run.
#[derive(Debug)]
enum Poison {
    /// An RPC server the model uses failed (endpoint, what happened).
    #[cfg_attr(not(feature = "rpc"), allow(dead_code))]
    Rpc(String, String),
    /// llama.cpp threw from a decode or encode: it may have marked its compute buffers
    /// as reserved before the reservation threw, so a later run could use buffers that
    /// were never allocated.
    Cpp(String),
}

// SAFETY: a llama_context may be used from any one thread at a time (`RawContext`); the
// callbacks it owns (through `CallbackData`'s pointer) are `Send`; `&Model` is `Send` because
// `Model: Sync`; a ggml thread pool is driven by whichever thread computes, and freed from any.
unsafe impl Send for Context<'_> {}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("n_ctx", &self.n_ctx())
            .field("n_batch", &self.n_batch)
            .finish()
    }
}

/// Performance counters of a context.
#[derive(Debug, Clone, Copy, Default)]
pub struct Perf {
    /// Milliseconds spent loading/creating.
    pub t_load_ms: f64,
    /// Milliseconds in prompt processing.
    pub t_p_eval_ms: f64,
    /// Milliseconds in generation.
    pub t_eval_ms: f64,
    /// Prompt tokens processed.
    pub n_p_eval: i32,
    /// Tokens generated.
    pub n_eval: i32,
    /// Times a graph was reused.
    pub n_reused: i32,
}

impl<'m> Context<'m> {
    /// Creates a context for `model`.
    pub fn new(model: &'m Model, params: ContextParams) -> Result<Context<'m>> {
        backend::init();
        params.validate()?;
        let ContextParams {
            mut raw,
            abort,
            graph,
            thread_pool,
        } = params;
        let pool_threads = thread_pool
            .as_ref()
            .map(|_| raw.n_threads.max(raw.n_threads_batch));
        let pool = match (&thread_pool, pool_threads) {
            (Some(options), Some(n)) => Some(RawThreadPool::new(n, options)?),
            _ => None,
        };
        let (has_abort, has_graph) = (abort.is_some(), graph.is_some());
        let callbacks = CallbackData::new(Callbacks {
            abort,
            graph,
            asked: None,
        });
        let data = callbacks.as_ptr();
        if has_abort {
            raw.abort_callback = Some(abort_trampoline);
            raw.abort_callback_data = data;
        }
        if has_graph {
            raw.cb_eval = Some(eval_trampoline);
            raw.cb_eval_user_data = data;
        }
        let rewrites_model = yarn_rewrites_n_ctx_train(model, &raw)?;
        // Building the graph reads the model's adapter set (see `Model::adapters_lock`). A
        // context with its own YaRN frequency scale also writes the shared model's
        // n_ctx_train (`llama_init_from_model`): it excludes every other context creation,
        // decode and adapter change on the model meanwhile.
        let (read, write) = if rewrites_model {
            (None, Some(adapters_write(model)?))
        } else {
            (Some(adapters_read(model)), None)
        };
        // SAFETY: the callback data is allocated by `CallbackData` at a fixed address and is
        // dropped after the context (field order in `Context`); the adapter lock is held.
        let ctx = unsafe { RawContext::init(model, raw, "llama_init_from_model") };
        drop((read, write));
        let mut ctx = ctx?;
        if let Some(pool) = &pool {
            // SAFETY: the pool is dropped after the context (field order in `Context`).
            unsafe { ctx.attach_threadpool(pool) }
        }
        let (n_batch, n_ubatch, n_seq_max) = (ctx.n_batch(), ctx.n_ubatch(), ctx.n_seq_max());
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let ctx = Context {
            raw: ctx,
            model,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            callbacks,
            pool,
            n_batch,
            n_ubatch,
            n_seq_max,
            n_outputs_max: raw.n_outputs_max,
            embeddings: raw.embeddings,
            loras: Vec::new(),
            poisoned: None,
        };
        // A vocabulary-only model has no weights: llama.cpp makes a context without
        // backends, scheduler, memory or output buffer, and its first decode dereferences
        // them. The missing output buffer is what tells (every runnable context has one).
        if !ctx.raw.has_output_buffer() {
            return Err(Error::Unsupported(
                "the model was loaded with `vocab_only`: it has no weights to run a context on"
                    .into(),
            ));
        }
        Ok(ctx)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The raw context: its memory, state and output calls.
    pub(crate) fn raw(&self) -> &RawContext<'m> {
        &self.raw
    }

    pub(crate) fn raw_mut(&mut self) -> &mut RawContext<'m> {
        &mut self.raw
    }

    /// The model this context runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Context size in tokens.
    pub fn n_ctx(&self) -> u32 {
        self.raw.n_ctx()
    }

    /// Most tokens one `decode` takes.
    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    /// Physical batch size.
    pub fn n_ubatch(&self) -> u32 {
        self.n_ubatch
    }

    /// Number of sequences.
    pub fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    fn check_batch(&self, batch: &Batch) -> Result<()> {
        if let Some(s) = batch
            .seq_ids()
            .find(|&s| s < 0 || s as u32 >= self.n_seq_max)
        {
            return Err(Error::OutOfRange {
                what: "sequence id",
                value: i64::from(s),
                expected: format!("0..{}", self.n_seq_max),
            });
        }
        let outputs = batch.output_indices().len();
        self.check_rows(batch.len(), outputs, batch.token_ids())
    }

    /// Checks shared by [`Batch`]es and borrowed token slices: size against n_batch (and
    /// n_ubatch without causal attention), outputs against n_outputs_max, token ids.
    fn check_rows(&self, n: usize, outputs: usize, token_ids: &[i32]) -> Result<()> {
        if n == 0 {
            return Err(Error::EmptyBatch);
        }
        let n = n as i64;
        if n > i64::from(self.n_batch) {
            return Err(Error::OutOfRange {
                what: "batch size",
                value: n,
                expected: format!("<= n_batch = {}", self.n_batch),
            });
        }
        let causal = self.raw.causal_attn();
        if !causal && n > i64::from(self.n_ubatch) {
            return Err(Error::OutOfRange {
                what: "batch size",
                value: n,
                expected: format!("<= n_ubatch = {} for non-causal attention", self.n_ubatch),
            });
        }
        let outputs = if self.embeddings { n as usize } else { outputs };
        self.check_outputs(outputs)?;
        let n_vocab = self.model.vocab().n_tokens();
        if let Some(&id) = token_ids.iter().find(|&&id| id < 0 || id >= n_vocab) {
            return Err(Error::InvalidToken { id, n_vocab });
        }
        Ok(())
    }

    /// With an explicit `n_outputs_max`, llama.cpp reserves `max(outputs, n_seq_max)`
    /// output rows per decode (every token in an embeddings context or an encode) and
    /// aborts when that exceeds `n_outputs_max`.
    fn check_outputs(&self, outputs: usize) -> Result<()> {
        let encoder = self.model.has_encoder();
        if self.n_outputs_max == 0 || encoder {
            return Ok(()); // llama.cpp uses n_batch, which check_rows enforces
        }
        let need = outputs.max(self.n_seq_max as usize) as i64;
        if need > i64::from(self.n_outputs_max) {
            return Err(Error::OutOfRange {
                what: "outputs in the batch",
                value: need,
                expected: format!("<= n_outputs_max = {}", self.n_outputs_max),
            });
        }
        Ok(())
    }

    /// Runs the model on `batch` (after checking every precondition that would
    /// otherwise abort the process or corrupt memory).
    pub fn decode(&mut self, batch: &mut Batch) -> Result<()> {
        self.check_usable()?;
        self.check_batch(batch)?;
        if self.model.position_rows.is_some() {
            self.check_position_rows(batch.positions().iter().copied().max())?;
        }
        let outputs = batch.output_indices();
        // SAFETY: the batch view is valid while `batch` is borrowed, for the whole call; the
        // batch passed `check_batch` and the position check; `outputs` are its output rows.
        unsafe { self.run_graph(batch.as_raw(), Graph::Decode, outputs) }
    }

    /// Decodes a borrowed run of tokens as the continuation of sequence 0, without
    /// building a [`Batch`]: positions follow the sequence's last one, and only the last
    /// token gets logits (every token, in an embeddings context). The common case of
    /// feeding a prompt or one sampled token; the same checks as [`Context::decode`] apply.
    ///
    /// ```no_run
    /// # fn demo(ctx: &mut llamacpp::Context<'_>, prompt: &[llamacpp::Token]) -> llamacpp::Result<()> {
    /// ctx.decode_tokens(prompt)?;
    /// let logits = ctx.logits(-1)?;
    /// # let _ = logits; Ok(()) }
    /// ```
    pub fn decode_tokens(&mut self, tokens: &[Token]) -> Result<()> {
        // Token is repr(transparent) over i32.
        let ids: &[i32] = bytemuck_tokens(tokens);
        self.check_usable()?;
        self.check_rows(ids.len(), 1, ids)?;
        if self.model.position_rows.is_some() {
            // Sequence 0 always exists; an empty sequence (or no memory) reports -1.
            let last = self.raw.memory_seq_pos_max(0)?;
            let last = i64::from(last.max(-1)) + ids.len() as i64;
            self.check_position_rows(Some(i32::try_from(last).unwrap_or(i32::MAX)))?;
        }
        let n = ids.len() as i32;
        let outputs = if self.embeddings {
            (0..n).collect()
        } else {
            vec![n - 1]
        };
        // SAFETY: the batch points into `ids`, borrowed for the whole call, which llama.cpp
        // only reads; the tokens passed `check_rows` and the position check; `outputs` are
        // the rows llama_batch_get_one's batch has outputs for.
        unsafe { self.run_graph(batch_one(ids), Graph::Decode, outputs) }
    }

    /// Runs the encoder (encoder-decoder and embedding models).
    ///
    /// A model with a decoder and memory but no encoder (every causal LM, hybrid and
    /// recurrent models) is [`Error::Unsupported`]: llama.cpp would build its decoder
    /// graph without the memory state it reads. The whole batch must fit in `n_ubatch`
    /// (the encoder cannot split it).
    pub fn encode(&mut self, batch: &mut Batch) -> Result<()> {
        self.check_usable()?;
        let (encoder, memory) = (self.model.has_encoder(), self.raw.has_memory());
        if !encoder && memory {
            return Err(Error::Unsupported(
                "encode on a model without an encoder (use decode)".into(),
            ));
        }
        self.check_batch(batch)?;
        if self.model.position_rows.is_some() {
            self.check_position_rows(batch.positions().iter().copied().max())?;
        }
        if batch.len() > self.n_ubatch as usize {
            return Err(Error::OutOfRange {
                what: "batch size",
                value: batch.len() as i64,
                expected: format!("<= n_ubatch = {} for encode", self.n_ubatch),
            });
        }
        let outputs = batch.output_indices();
        // SAFETY: the batch view is valid while `batch` is borrowed, for the whole call; the
        // batch passed `check_batch`, the position check and the n_ubatch bound of encode;
        // `outputs` are its output rows.
        unsafe { self.run_graph(batch.as_raw(), Graph::Encode, outputs) }
    }

    /// A model with a learned position embedding looks each position up as a row of it,
    /// and ggml asserts (aborts) on a row past its end: `highest` must be below its rows.
    fn check_position_rows(&self, highest: Option<i32>) -> Result<()> {
        match (self.model.position_rows, highest) {
            (Some(rows), Some(p)) if p >= rows => Err(Error::OutOfRange {
                what: "position",
                value: i64::from(p),
                expected: format!(
                    "< {rows}: the model looks positions up in a learned table of {rows} rows \
                     (its training context)"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// `Err` once an RPC server failed under this context (see [`Context::check_remote`]).
    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(Poison::Rpc(endpoint, reason)) => Err(Error::Rpc {
                endpoint: endpoint.clone(),
                reason: format!(
                    "this context is unusable after an earlier failure ({reason}); create a new \
                     one (and load the model again if the server is gone)"
                ),
            }),
            Some(Poison::Cpp(message)) => Err(Error::Unsupported(format!(
                "this context is unusable after llama.cpp threw in an earlier run ({message}); \
                 create a new one"
            ))),
        }
    }

    /// Records that llama.cpp threw from a run (see [`Poison::Cpp`]) and passes the error on.
    /// Runs `raw` through the decoder or the encoder, after the checks of its caller:
    /// a C++ exception poisons the context, a panic in a graph callback is the error (after
    /// the connection check, which must see every run), then the return code.
    ///
    /// On success the batch's `outputs` become readable; on failure there are none.
    ///
    /// # Safety
    /// As for [`RawContext::run`]: the arrays `raw` points into stay valid and unchanged for
    /// the call, the batch passed this context's checks, and `outputs` are its output rows.
    unsafe fn run_graph(
        &mut self,
        raw: sys::llama_batch,
        graph: Graph,
        outputs: Vec<i32>,
    ) -> Result<()> {
        let ctx = &mut self.raw;
        let mut ran = Ok(0);
        // A graph rebuild reads the model's adapter set (see `Model::adapters_lock`).
        let guard = adapters_read(self.model);
        let panicked = crate::panic::guarded(|| {
            // SAFETY: the caller's guarantees.
            ran = unsafe { ctx.run(raw, graph, outputs) };
        });
        drop(guard);
        let rc = ran.map_err(|e| self.poison_on_throw(e))?;
        let remote = self.check_remote(rc);
        panicked?;
        remote?;
        check_decode(rc)?;
        self.raw.commit_outputs();
        Ok(())
    }

    fn poison_on_throw(&mut self, e: Error) -> Error {
        if let Error::Cpp { what, message } = &e {
            self.poisoned = Some(Poison::Cpp(format!("{what}: {message}")));
        }
        e
    }

    /// On a model with RPC devices (patched build): after a run returned `rc`, waits for
    /// its outputs and checks the connections; a failure poisons the context. Free for
    /// models without them.
    #[cfg(feature = "rpc")]
    fn check_remote(&mut self, rc: i32) -> Result<()> {
        if self.model.rpc_endpoints.is_empty() {
            return Ok(());
        }
        let checked = self.raw.check_remote(&self.model.rpc_endpoints, rc);
        if let Err(e) = checked {
            let endpoint = match &e {
                Error::Rpc { endpoint, .. } => endpoint.clone(),
                _ => self.model.rpc_endpoints.join(","),
            };
            self.poisoned = Some(Poison::Rpc(endpoint, e.to_string()));
            return Err(e);
        }
        Ok(())
    }

    /// Without the `rpc` feature no model has remote devices.
    #[cfg(not(feature = "rpc"))]
    fn check_remote(&mut self, _rc: i32) -> Result<()> {
        Ok(())
    }

    /// Waits for pending backend work (decode may return before a GPU finishes).
    pub fn synchronize(&mut self) {
        self.raw.synchronize()
    }

    /// Batch indices that have outputs from the last decode.
    pub fn output_indices(&self) -> &[i32] {
        self.raw.outputs()
    }

    /// Logits of batch index `i` of the last decode (negative: from the end of the outputs).
    pub fn logits(&self, i: i32) -> Result<&[f32]> {
        self.raw.logits(i)
    }

    /// Embedding of batch index `i` (pooling `None`), `n_embd` floats.
    pub fn embeddings(&self, i: i32) -> Result<&[f32]> {
        if !self.embeddings {
            return Err(Error::EmbeddingsDisabled);
        }
        self.raw.embeddings(i)
    }

    /// Pooled embedding of sequence `seq` (pooling other than `None`).
    pub fn seq_embeddings(&self, seq: i32) -> Result<&[f32]> {
        if !self.embeddings {
            return Err(Error::EmbeddingsDisabled);
        }
        self.raw.seq_embeddings(seq)
    }

    pub(crate) fn check_seq(&self, seq: i32) -> Result<()> {
        self.raw.check_seq(seq)
    }

    /// Sets the threads for generation and batch processing: 1 to 512 (ggml's limit),
    /// and with a [`thread_pool`](crate::ContextParams::thread_pool) at most its size.
    pub fn set_threads(&mut self, n_gen: i32, n_batch: i32) -> Result<()> {
        self.raw.set_n_threads(n_gen, n_batch)
    }

    /// Performance counters.
    pub fn perf(&self) -> Perf {
        let d = self.raw.perf();
        Perf {
            t_load_ms: d.t_load_ms,
            t_p_eval_ms: d.t_p_eval_ms,
            t_eval_ms: d.t_eval_ms,
            n_p_eval: d.n_p_eval,
            n_eval: d.n_eval,
            n_reused: d.n_reused,
        }
    }

    /// Resets the performance counters.
    pub fn reset_perf(&mut self) {
        self.raw.reset_perf()
    }
}

/// Whether creating a context with `raw` makes llama.cpp write the model's `n_ctx_train`
/// (as `n_ctx_orig_yarn / rope_freq_scale`): with YaRN scaling (asked for, or possibly the
/// model's own when unspecified) and a frequency scale other than the model's. `Err` when
/// that quotient does not fit the `u32` it is converted to (undefined behaviour in C++,
/// leaving the model with a garbage training context).
fn yarn_rewrites_n_ctx_train(model: &Model, raw: &sys::llama_context_params) -> Result<bool> {
    let scale = raw.rope_freq_scale;
    let train_scale = model.raw().rope_freq_scale_train();
    let yarn = matches!(
        raw.rope_scaling_type,
        sys::LLAMA_ROPE_SCALING_TYPE_YARN | sys::LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED
    );
    // 0 means "the model's scale" (validated: finite and >= 0).
    if !yarn || scale == 0.0 || scale == train_scale {
        return Ok(false);
    }
    // llama.cpp's n_ctx_orig_yarn: the parameter, else the model's original context
    // (metadata), else its training context.
    let orig = if raw.yarn_orig_ctx != 0 {
        f64::from(raw.yarn_orig_ctx)
    } else {
        let arch = model.architecture().unwrap_or_default();
        model
            .meta(&format!("{arch}.rope.scaling.original_context_length"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&v| v > 0.0)
            .unwrap_or(f64::from(model.n_ctx_train().max(0)))
    };
    if orig / f64::from(scale) >= f64::from(u32::MAX) {
        return Err(Error::OutOfRange {
            what: "rope_freq_scale",
            value: 0,
            expected: format!(
                "YaRN needs original context / scale < 2^32 (original context {orig}, scale \
                 {scale})"
            ),
        });
    }
    Ok(true)
}

/// The ids of a token slice, without copying.
pub(crate) fn bytemuck_tokens(tokens: &[Token]) -> &[i32] {
    crate::raw::context::token_ids(tokens)
}
