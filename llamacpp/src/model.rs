//! Loaded models: [`Model`] owns a `llama_model`, [`ModelParams`] configures loading.

use std::path::Path;
use std::sync::RwLock;

use llamacpp_sys as sys;

use crate::backend;
use crate::error::{Error, Result, c_string};
use crate::raw::model::{LoadParams, ProgressFn, RawModel};
use crate::vocab::Vocab;

pub use crate::model_params::ModelParams;
pub use from_metadata::TensorData;

mod from_metadata;

/// A loaded model. Contexts borrow it; it is `Send + Sync`, so several threads
/// can each run their own context on one model.
pub struct Model {
    raw: RawModel,
    /// llama.cpp keeps the model's LoRA adapters in an unsynchronised set that
    /// loading/freeing an adapter writes and building a context's graph reads:
    /// adapter load and free take it for writing, context creation and decode
    /// for reading, so adapters can be used while other threads decode.
    pub(crate) adapters_lock: RwLock<()>,
    /// The RPC servers (`host:port`) whose devices the model may use; empty without
    /// them, which keeps decoding free of their checks.
    #[cfg(feature = "rpc")]
    pub(crate) rpc_endpoints: Vec<String>,
    /// The identity state files carry (`state_file::fingerprint`), hashed once: it covers
    /// the whole vocabulary, which every save and load would otherwise hash again.
    pub(crate) fingerprint: std::sync::OnceLock<[u8; 32]>,
    /// The rows of a learned position embedding (its training context when loaded; a
    /// YaRN context may rewrite `n_ctx_train` later, never the tensor), or `None` for
    /// models whose positions are not looked up in a table.
    pub(crate) position_rows: Option<i32>,
}

// SAFETY: a llama_model is immutable after loading; llama.cpp creates contexts
// from it concurrently (each context has its own state), and freeing it needs
// exclusive ownership, which Drop (of `RawModel`) has.
unsafe impl Send for Model {}
// SAFETY: as above: shared access only reads the model, except the LoRA adapter set,
// which is written and read only under `adapters_lock`.
unsafe impl Sync for Model {}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("desc", &self.description())
            .finish()
    }
}

impl Model {
    /// Loads a GGUF model file.
    pub fn load(path: impl AsRef<Path>, mut params: ModelParams) -> Result<Model> {
        backend::init();
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: "no such file".into(),
            });
        }
        let c_path = crate::error::path_c_string(path)?;
        let facts = crate::model_check::check_file(&c_path, &params).map_err(|reason| {
            Error::ModelLoad {
                path: path.into(),
                reason,
            }
        })?;
        let mut progress: Option<ProgressFn> = params.progress.take();
        let load_params = LoadParams::new(&mut params);
        #[cfg(feature = "rpc")]
        let rpc_endpoints = load_params.rpc_endpoints();
        let mut loaded = (None, String::new());
        let panicked = crate::panic::guarded(|| {
            loaded =
                backend::capture_log(|| RawModel::load(&c_path, &load_params, progress.as_mut()));
        });
        drop(progress);
        drop(params);
        let (raw, log) = loaded;
        if let Err(e) = panicked {
            // The callback answered "cancel", so llama.cpp returns NULL; a model it returned
            // anyway is freed (dropped here), since the load is reported as failed.
            drop(raw);
            return Err(e);
        }
        let Some(raw) = raw else {
            // A connection that failed during the load: say which server (while another
            // model keeps that connection; otherwise the log tells).
            #[cfg(feature = "rpc")]
            crate::rpc::check_endpoints(&rpc_endpoints)?;
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: if log.is_empty() {
                    "llama.cpp returned NULL (cancelled?)".into()
                } else {
                    log
                },
            });
        };
        let model = Model {
            // A model just loaded: no context can have rewritten `n_ctx_train` yet.
            position_rows: facts.learned_positions.then(|| raw.n_ctx_train()),
            raw,
            adapters_lock: RwLock::new(()),
            fingerprint: std::sync::OnceLock::new(),
            #[cfg(feature = "rpc")]
            rpc_endpoints,
        };
        // A connection lost during the load may have left weights unwritten (dropping the
        // model on Err frees it).
        #[cfg(feature = "rpc")]
        crate::rpc::check_endpoints(&model.rpc_endpoints)?;
        // Special tokens the vocabulary adds but lacks (known only after the load).
        crate::model_check::check_loaded(&model).map_err(|reason| Error::ModelLoad {
            path: path.into(),
            reason,
        })?;
        Ok(model)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.raw.as_ptr()
    }

    /// The raw model handle.
    pub(crate) fn raw(&self) -> &RawModel {
        &self.raw
    }

    /// The model's vocabulary.
    pub fn vocab(&self) -> Vocab<'_> {
        Vocab::new(self.raw.vocab())
    }

    /// Short description, e.g. `qwen3next 80B.A3B Q4_0`.
    pub fn description(&self) -> String {
        self.raw.desc().unwrap_or_default()
    }

    /// Total size of all tensors in bytes.
    pub fn size(&self) -> u64 {
        self.raw.size()
    }

    /// Number of parameters.
    pub fn n_params(&self) -> u64 {
        self.raw.n_params()
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> i32 {
        // Creating a YaRN context may rewrite this value (under the write lock).
        let _guard = crate::context::adapters_read(self);
        self.raw.n_ctx_train()
    }

    /// Embedding size.
    pub fn n_embd(&self) -> i32 {
        self.raw.n_embd()
    }

    /// Number of layers.
    pub fn n_layer(&self) -> i32 {
        self.raw.n_layer()
    }

    /// Number of attention heads.
    pub fn n_head(&self) -> i32 {
        self.raw.n_head()
    }

    /// Number of key/value heads (fewer than [`Model::n_head`] with grouped-query attention).
    pub fn n_head_kv(&self) -> i32 {
        self.raw.n_head_kv()
    }

    /// How llama.cpp rotates positions for this architecture: one of the
    /// `llamacpp_sys::LLAMA_ROPE_TYPE_*` values (`NONE` for models without RoPE,
    /// `NORM` for llama, `NEOX` for qwen3next, `IMROPE` for qwen35moe, ...).
    pub fn rope_type(&self) -> i32 {
        self.raw.rope_type()
    }

    /// Whether the model has recurrent state (Mamba, RWKV, ...).
    pub fn is_recurrent(&self) -> bool {
        self.raw.is_recurrent()
    }

    /// Whether the model mixes attention and recurrent layers (Qwen3-Next, ...).
    pub fn is_hybrid(&self) -> bool {
        self.raw.is_hybrid()
    }

    /// Whether the model has an encoder (T5-style).
    pub fn has_encoder(&self) -> bool {
        self.raw.has_encoder()
    }

    /// The value of one metadata key, e.g. `general.architecture`.
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = c_string(key).ok()?;
        self.raw.meta(&key)
    }

    /// Every metadata key and value, in file order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        (0..self.raw.meta_count())
            .filter_map(|i| self.raw.meta_by_index(i))
            .collect()
    }

    /// The architecture name (`general.architecture`).
    pub fn architecture(&self) -> Option<String> {
        self.meta("general.architecture")
    }

    /// The model's chat template (the default one, or a named one), if it has one.
    pub fn chat_template(&self, name: Option<&str>) -> Option<String> {
        let name = name.map(c_string).transpose().ok()?;
        self.raw.chat_template(name.as_deref())
    }
}
