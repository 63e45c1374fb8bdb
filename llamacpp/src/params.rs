//! [`ContextParams`]: everything `llama_init_from_model` takes, as a builder.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use llamacpp_ggml::TensorType;
use llamacpp_sys as sys;

use crate::backend;
use crate::error::{Error, Result};

/// Data type of the K or V cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheType {
    /// 32-bit float.
    F32,
    /// 16-bit float (llama.cpp's default).
    F16,
    /// bfloat16.
    Bf16,
    /// 8-bit blocks.
    Q8_0,
    /// 4-bit blocks.
    Q4_0,
    /// 4-bit blocks with offset.
    Q4_1,
    /// 5-bit blocks.
    Q5_0,
    /// 5-bit blocks with offset.
    Q5_1,
    /// Non-linear 4-bit.
    Iq4Nl,
}

impl CacheType {
    const ALL: [CacheType; 9] = [
        CacheType::F32,
        CacheType::F16,
        CacheType::Bf16,
        CacheType::Q8_0,
        CacheType::Q4_0,
        CacheType::Q4_1,
        CacheType::Q5_0,
        CacheType::Q5_1,
        CacheType::Iq4Nl,
    ];

    /// The storage type in the shared ggml type table, which holds ggml's value and name.
    fn tensor_type(self) -> TensorType {
        match self {
            CacheType::F32 => TensorType::F32,
            CacheType::F16 => TensorType::F16,
            CacheType::Bf16 => TensorType::BF16,
            CacheType::Q8_0 => TensorType::Q8_0,
            CacheType::Q4_0 => TensorType::Q4_0,
            CacheType::Q4_1 => TensorType::Q4_1,
            CacheType::Q5_0 => TensorType::Q5_0,
            CacheType::Q5_1 => TensorType::Q5_1,
            CacheType::Iq4Nl => TensorType::IQ4_NL,
        }
    }

    pub(crate) fn raw(self) -> sys::ggml_type {
        self.tensor_type().ggml()
    }

    /// Parses llama.cpp's names (`f16`, `q8_0`, ...), in any case.
    pub fn from_name(name: &str) -> Option<CacheType> {
        let lower = name.to_ascii_lowercase();
        CacheType::ALL.into_iter().find(|c| c.name() == lower)
    }

    /// llama.cpp's name for the type.
    pub fn name(self) -> &'static str {
        self.tensor_type().name()
    }
}

/// Flash attention setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttn {
    /// Let llama.cpp decide per device (default).
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// How embeddings are pooled per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pooling {
    /// The model's default.
    Unspecified,
    /// One embedding per token.
    None,
    /// Mean over the sequence.
    Mean,
    /// The CLS token.
    Cls,
    /// The last token.
    Last,
    /// Reranking score.
    Rank,
}

/// RoPE scaling method (context extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RopeScaling {
    /// The model's own setting (default).
    Unspecified,
    /// No scaling.
    None,
    /// Linear position interpolation.
    Linear,
    /// YaRN.
    Yarn,
    /// LongRoPE.
    LongRope,
}

/// Attention mask for embedding contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttentionType {
    /// The model's own (default).
    Unspecified,
    /// Causal (each token sees earlier tokens only).
    Causal,
    /// Non-causal (every token sees the whole sequence).
    NonCausal,
}

/// One node of a compute graph, as seen by a graph observer or timer.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Operation name (`MUL_MAT`, `CPY`, `CONT`, unary ops by their own name, ...).
    pub op: String,
    /// The tensor's name in the graph.
    pub name: String,
    /// Bytes the node's result occupies.
    pub bytes: usize,
    /// Whether its first source is contiguous (`None` without sources).
    pub src0_contiguous: Option<bool>,
    /// Element counts per dimension.
    pub ne: [i64; 4],
    /// The node's first sources (at most 3), by slot: `srcs[i]` is source `i`. The
    /// list ends at the first empty slot.
    pub srcs: Vec<SrcInfo>,
}

/// One source (input) of a [`GraphNode`]: what a bandwidth figure needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrcInfo {
    /// The source tensor's name (a weight keeps its GGUF name, e.g.
    /// `blk.0.ffn_down_exps.weight`).
    pub name: String,
    /// Bytes the whole source occupies (`ggml_nbytes`); for a `MUL_MAT`'s weight,
    /// what one computation of the node reads. For `MUL_MAT_ID` it spans every
    /// expert, of which a step reads only the selected ones.
    pub bytes: usize,
    /// ggml's name of its data type (`f32`, `q4_0`, `q8_0`, `i32`, ...).
    pub type_name: String,
    /// Element counts per dimension.
    pub ne: [i64; 4],
}

pub(crate) type GraphObserver = Box<dyn FnMut(&GraphNode) + Send>;
pub(crate) type GraphTimer = Box<dyn FnMut(&GraphNode, Duration) + Send>;

/// The graph callback a context installs: at most one of the two kinds.
pub(crate) enum GraphCallback {
    /// [`ContextParams::observe_graph`].
    Observe(GraphObserver),
    /// [`ContextParams::time_graph`].
    Time(GraphTimer),
}

/// Parameters of a new [`Context`](crate::Context).
///
/// ```
/// let p = llamacpp::ContextParams::default().n_ctx(2048).n_batch(512).n_threads(2);
/// # let _ = p;
/// ```
pub struct ContextParams {
    pub(crate) raw: sys::llama_context_params,
    pub(crate) abort: Option<Arc<AtomicBool>>,
    pub(crate) graph: Option<GraphCallback>,
    pub(crate) thread_pool: Option<ThreadPoolOptions>,
}

// SAFETY: the raw pointers in `raw` (abort and eval callbacks and their data, sampler configs)
// are never set by `ContextParams`'s methods: they stay NULL until `Context::new` fills them
// in on its own copy. The other fields (an `Arc<AtomicBool>`, `Send` boxed closures, plain
// options) are `Send`. So the parameters may be built on one thread and used on another.
unsafe impl Send for ContextParams {}

/// How the workers of a context's CPU thread pool ([`ContextParams::thread_pool_options`])
/// behave; the fields are ggml's `ggml_threadpool_params`.
///
/// ```
/// let o = llamacpp::ThreadPoolOptions { poll: 0, ..Default::default() };
/// let p = llamacpp::ContextParams::default().thread_pool_options(o);
/// # let _ = p;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPoolOptions {
    /// How long an idle worker polls for new work before it sleeps: 0 sleeps at once,
    /// 100 polls longest (ggml's default, 50, is also upstream `llama-bench`'s `--poll`).
    pub poll: u32,
    /// Pin each worker to its own CPU of `cpu_mask` (ggml's `strict_cpu`).
    pub strict_cpu: bool,
    /// The CPUs the workers may run on, by CPU number (entries past ggml's thread limit
    /// are ignored); empty or all-false keeps the default affinity.
    pub cpu_mask: Vec<bool>,
}

impl Default for ThreadPoolOptions {
    fn default() -> Self {
        Self {
            poll: 50,
            strict_cpu: false,
            cpu_mask: Vec::new(),
        }
    }
}

impl Default for ContextParams {
    fn default() -> Self {
        backend::init();
        let raw = crate::raw::context::default_params();
        Self {
            raw,
            abort: None,
            graph: None,
            thread_pool: None,
        }
    }
}

impl std::fmt::Debug for ContextParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.raw;
        f.debug_struct("ContextParams")
            .field("n_ctx", &r.n_ctx)
            .field("n_batch", &r.n_batch)
            .field("n_ubatch", &r.n_ubatch)
            .field("n_seq_max", &r.n_seq_max)
            .field("n_threads", &r.n_threads)
            .field("type_k", &r.type_k)
            .field("type_v", &r.type_v)
            .field("flash_attn_type", &r.flash_attn_type)
            .field("offload_kqv", &r.offload_kqv)
            .field("op_offload", &r.op_offload)
            .field("embeddings", &r.embeddings)
            .field("thread_pool", &self.thread_pool)
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        $($(#[$doc])* pub fn $name(mut self, v: $ty) -> Self { self.raw.$field = v as _; self })*
    };
}

/// Most CPU threads one computation may use: ggml's `GGML_MAX_N_THREADS` (its thread
/// pools and CPU masks are arrays of this size).
pub(crate) const MAX_THREADS: i32 = sys::GGML_MAX_N_THREADS as i32;

/// `Err` unless `1 <= n <= MAX_THREADS`: ggml starts `n` threads for every graph (an
/// enormous count exhausts the process) and indexes fixed-size arrays by thread.
pub(crate) fn check_threads(what: &'static str, n: i32) -> Result<()> {
    if (1..=MAX_THREADS).contains(&n) {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what,
            value: i64::from(n),
            expected: format!("1..={MAX_THREADS}"),
        })
    }
}

impl ContextParams {
    setter! {
        /// Context size in tokens (0 = the model's training context).
        n_ctx: n_ctx: u32,
        /// Most tokens one `decode` call may take.
        n_batch: n_batch: u32,
        /// Most tokens computed at once (physical batch).
        n_ubatch: n_ubatch: u32,
        /// Number of distinct sequences (states for recurrent models), at most 256
        /// and at most `n_batch`.
        n_seq_max: n_seq_max: u32,
        /// Most output rows (logits/embeddings) one decode may produce, and what the
        /// compute buffers are sized for (0 = n_batch): a small value saves the
        /// output projection's memory when few tokens ask for logits. At least
        /// `n_seq_max`; `decode` rejects a batch with more outputs (every token in
        /// an embeddings context).
        n_outputs_max: n_outputs_max: u32,
        /// Threads for single-token generation (1 to 512, ggml's limit).
        n_threads_gen: n_threads: i32,
        /// Threads for batch (prompt) processing (1 to 512, ggml's limit).
        n_threads_batch: n_threads_batch: i32,
        /// Extract embeddings (as well as logits).
        embeddings: embeddings: bool,
        /// Keep the KV cache and attention on the GPU.
        offload_kqv: offload_kqv: bool,
        /// Offload host tensor operations to the device.
        op_offload: op_offload: bool,
        /// Skip performance counters.
        no_perf: no_perf: bool,
        /// One KV buffer across sequences.
        kv_unified: kv_unified: bool,
        /// Full-size sliding-window cache.
        swa_full: swa_full: bool,
        /// RoPE base frequency (0 = the model's).
        rope_freq_base: rope_freq_base: f32,
        /// RoPE frequency scale (0 = the model's).
        rope_freq_scale: rope_freq_scale: f32,
        /// YaRN extrapolation mix factor (negative = the model's).
        yarn_ext_factor: yarn_ext_factor: f32,
        /// YaRN magnitude scaling factor (negative = the model's).
        yarn_attn_factor: yarn_attn_factor: f32,
        /// YaRN low correction dimension (negative = the model's).
        yarn_beta_fast: yarn_beta_fast: f32,
        /// YaRN high correction dimension (negative = the model's).
        yarn_beta_slow: yarn_beta_slow: f32,
        /// YaRN original context size.
        yarn_orig_ctx: yarn_orig_ctx: u32,
    }

    /// Threads for both generation and batch processing.
    pub fn n_threads(self, n: i32) -> Self {
        self.n_threads_gen(n).n_threads_batch(n)
    }

    /// Flash attention.
    pub fn flash_attn(mut self, fa: FlashAttn) -> Self {
        self.raw.flash_attn_type = match fa {
            FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        };
        self
    }

    /// K cache type.
    pub fn type_k(mut self, t: CacheType) -> Self {
        self.raw.type_k = t.raw();
        self
    }

    /// V cache type (quantized types need flash attention).
    pub fn type_v(mut self, t: CacheType) -> Self {
        self.raw.type_v = t.raw();
        self
    }

    /// RoPE scaling method; with [`yarn_*`](Self::yarn_ext_factor) and
    /// [`rope_freq_scale`](Self::rope_freq_scale) it extends the context.
    ///
    /// ```
    /// use llamacpp::{ContextParams, RopeScaling};
    /// let p = ContextParams::default()
    ///     .rope_scaling(RopeScaling::Yarn)
    ///     .rope_freq_scale(0.25)
    ///     .yarn_orig_ctx(4096);
    /// # let _ = p;
    /// ```
    pub fn rope_scaling(mut self, r: RopeScaling) -> Self {
        self.raw.rope_scaling_type = match r {
            RopeScaling::Unspecified => sys::LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
            RopeScaling::None => sys::LLAMA_ROPE_SCALING_TYPE_NONE,
            RopeScaling::Linear => sys::LLAMA_ROPE_SCALING_TYPE_LINEAR,
            RopeScaling::Yarn => sys::LLAMA_ROPE_SCALING_TYPE_YARN,
            RopeScaling::LongRope => sys::LLAMA_ROPE_SCALING_TYPE_LONGROPE,
        };
        self
    }

    /// Attention mask used when computing embeddings.
    pub fn attention_type(mut self, a: AttentionType) -> Self {
        self.raw.attention_type = match a {
            AttentionType::Unspecified => sys::LLAMA_ATTENTION_TYPE_UNSPECIFIED,
            AttentionType::Causal => sys::LLAMA_ATTENTION_TYPE_CAUSAL,
            AttentionType::NonCausal => sys::LLAMA_ATTENTION_TYPE_NON_CAUSAL,
        };
        self
    }

    /// Checks the values the builder cannot reject on its own; called by
    /// [`Context::new`](crate::Context::new) before llama.cpp sees them.
    pub(crate) fn validate(&self) -> Result<()> {
        let r = &self.raw;
        let range = |what: &'static str, value: i64, expected: &str| {
            Err(Error::OutOfRange {
                what,
                value,
                expected: expected.into(),
            })
        };
        if r.n_seq_max == 0 || r.n_seq_max > 256 {
            return range("n_seq_max", i64::from(r.n_seq_max), "1..=256");
        }
        // llama.cpp reserves n_seq_max output rows when it creates the context and
        // asserts they fit in n_outputs_max.
        if r.n_outputs_max != 0 && r.n_outputs_max < r.n_seq_max {
            return range(
                "n_outputs_max",
                i64::from(r.n_outputs_max),
                "0 (= n_batch) or >= n_seq_max",
            );
        }
        if r.n_batch == 0 && r.n_ubatch == 0 {
            return range("n_batch", 0, ">= 1");
        }
        // llama.cpp reserves n_seq_max output rows at creation in a buffer of n_batch
        // rows and aborts when they do not fit. Its effective n_batch is
        // min(n_ctx, n_batch) with n_ctx padded to a multiple of 256 >= n_seq_max,
        // so the value set here is what decides.
        if r.n_batch < r.n_seq_max {
            return range(
                "n_batch",
                i64::from(r.n_batch),
                &format!(">= n_seq_max = {}", r.n_seq_max),
            );
        }
        check_threads("n_threads_gen", r.n_threads)?;
        check_threads("n_threads_batch", r.n_threads_batch)?;
        // 0 means "the model's value"; negative or non-finite values have no meaning.
        for (what, v) in [
            ("rope_freq_base", r.rope_freq_base),
            ("rope_freq_scale", r.rope_freq_scale),
        ] {
            if !v.is_finite() || v < 0.0 {
                return range(what, v as i64, "finite and >= 0 (0 = the model's)");
            }
        }
        // Negative means "the model's value"; only non-finite values are wrong.
        for (what, v) in [
            ("yarn_ext_factor", r.yarn_ext_factor),
            ("yarn_attn_factor", r.yarn_attn_factor),
            ("yarn_beta_fast", r.yarn_beta_fast),
            ("yarn_beta_slow", r.yarn_beta_slow),
        ] {
            if !v.is_finite() {
                return range(what, 0, "finite (negative = the model's)");
            }
        }
        Ok(())
    }

    /// Pooling of embeddings.
    pub fn pooling(mut self, p: Pooling) -> Self {
        self.raw.pooling_type = match p {
            Pooling::Unspecified => sys::LLAMA_POOLING_TYPE_UNSPECIFIED,
            Pooling::None => sys::LLAMA_POOLING_TYPE_NONE,
            Pooling::Mean => sys::LLAMA_POOLING_TYPE_MEAN,
            Pooling::Cls => sys::LLAMA_POOLING_TYPE_CLS,
            Pooling::Last => sys::LLAMA_POOLING_TYPE_LAST,
            Pooling::Rank => sys::LLAMA_POOLING_TYPE_RANK,
        };
        self
    }

    /// A flag that, once set, makes a running `decode` stop (CPU backends) and return
    /// [`Error::Aborted`](crate::Error::Aborted). Share it with another thread.
    pub fn abort_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.abort = Some(flag);
        self
    }

    /// Keeps the CPU backend's worker threads alive between graph computations, in
    /// a ggml thread pool the context owns (as upstream's `llama-bench` does),
    /// instead of starting and joining them for every computation (the default).
    /// Idle workers poll for new work for a short while before they sleep.
    /// Results are the same either way.
    ///
    /// The pool has `max(n_threads_gen, n_threads_batch)` threads; it is freed
    /// with the context.
    pub fn thread_pool(mut self, on: bool) -> Self {
        self.thread_pool = on.then(ThreadPoolOptions::default);
        self
    }

    /// A [`thread_pool`](Self::thread_pool) whose workers poll, and are placed on CPUs,
    /// as `options` says.
    pub fn thread_pool_options(mut self, options: ThreadPoolOptions) -> Self {
        self.thread_pool = Some(options);
        self
    }

    /// Calls `f` for every node of every graph this context computes, without
    /// changing how the graph is scheduled (the observer never asks for data).
    ///
    /// A context has one graph callback: this replaces an earlier
    /// [`time_graph`](Self::time_graph), and a later one replaces this.
    pub fn observe_graph(mut self, f: impl FnMut(&GraphNode) + Send + 'static) -> Self {
        self.graph = Some(GraphCallback::Observe(Box::new(f)));
        self
    }

    /// Times every node of every graph this context computes: `f` gets each node
    /// after it is computed, with the wall time its computation took.
    ///
    /// This is for profiling, and it changes scheduling: the timer asks ggml's
    /// scheduler for every node's result, so each node is computed alone (one
    /// backend compute call and synchronisation per node). Small nodes then pay
    /// a thread-pool wake-up each, and the sum of the times exceeds what the
    /// graph takes in one piece; results are the same. Nodes that compute
    /// nothing (views, reshapes) are reported too, with the cost of their call.
    /// Without a [`thread_pool`](Self::thread_pool), every node also pays for
    /// starting and joining the worker threads: profile with one.
    ///
    /// A context has one graph callback: this replaces an earlier
    /// [`observe_graph`](Self::observe_graph), and a later one replaces this.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let total = Arc::new(Mutex::new(std::time::Duration::ZERO));
    /// let sink = Arc::clone(&total);
    /// let p = llamacpp::ContextParams::default().time_graph(move |node, took| {
    ///     if node.op == "MUL_MAT" {
    ///         if let Ok(mut t) = sink.lock() {
    ///             *t += took;
    ///         }
    ///     }
    /// });
    /// # let _ = p;
    /// ```
    pub fn time_graph(mut self, f: impl FnMut(&GraphNode, Duration) + Send + 'static) -> Self {
        self.graph = Some(GraphCallback::Time(Box::new(f)));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_type_names_are_ggmls_and_parse_back() {
        for c in CacheType::ALL {
            assert_eq!(CacheType::from_name(c.name()), Some(c));
            assert_eq!(CacheType::from_name(&c.name().to_uppercase()), Some(c));
        }
        assert_eq!(CacheType::Iq4Nl.name(), "iq4_nl");
        assert_eq!(CacheType::Q8_0.raw(), sys::GGML_TYPE_Q8_0);
        assert_eq!(CacheType::Bf16.raw(), sys::GGML_TYPE_BF16);
        assert_eq!(CacheType::from_name("q4_k"), None);
    }
}
