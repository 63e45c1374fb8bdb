//! Loaded models: [`Model`] owns a `llama_model`, [`ModelParams`] configures loading.

use std::ffi::{c_char, c_void};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::RwLock;

use llamacpp_sys as sys;

use crate::backend::{self, cstr_lossy};
use crate::error::{Error, Result, c_string};
use crate::vocab::Vocab;

pub use crate::model_params::ModelParams;

type ProgressFn = Box<dyn FnMut(f32) -> bool + Send>;

extern "C" fn progress_trampoline(p: f32, user: *mut c_void) -> bool {
    // SAFETY: `user` is the `&mut ProgressFn` passed by `Model::load`, alive for the call.
    let f = unsafe { &mut *user.cast::<ProgressFn>() };
    // A panic must not unwind into C: it cancels the load, which then reports it.
    crate::panic::catch("progress", || f(p)).unwrap_or(false)
}

/// A loaded model. Contexts borrow it; it is `Send + Sync`, so several threads
/// can each run their own context on one model.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
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
// exclusive ownership, which Drop has.
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

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own the pointer; borrows (contexts, vocab) ended before drop.
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) }
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
        let mut raw = params.raw_for_load();
        if let Some(f) = progress.as_mut() {
            raw.progress_callback = Some(progress_trampoline);
            raw.progress_callback_user_data = (f as *mut ProgressFn).cast();
        }
        #[cfg(feature = "rpc")]
        // SAFETY: `raw.devices` is NULL or the NULL-terminated list `params` owns, of
        // devices `ModelParams::devices` looked up in the registry.
        let rpc_endpoints = unsafe { crate::rpc::model_endpoints(raw.devices) };
        let mut loaded = (std::ptr::null_mut(), String::new());
        let panicked = crate::panic::guarded(|| {
            // SAFETY: the path is NUL-terminated; the progress closure and the arrays `raw`
            // points into (owned by `params`, untouched until after the call) outlive the call.
            loaded = backend::capture_log(|| unsafe {
                sys::llama_model_load_from_file(c_path.as_ptr(), raw)
            });
        });
        drop(progress);
        drop(params);
        let (ptr, log) = loaded;
        if let Err(e) = panicked {
            // The callback answered "cancel", so llama.cpp returns NULL; a model it returned
            // anyway is freed, since the load is reported as failed.
            if !ptr.is_null() {
                // SAFETY: a model llama.cpp just returned, owned by nothing else.
                unsafe { sys::llama_model_free(ptr) };
            }
            return Err(e);
        }
        let Some(ptr) = NonNull::new(ptr) else {
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
            ptr,
            adapters_lock: RwLock::new(()),
            fingerprint: std::sync::OnceLock::new(),
            // SAFETY: a model just loaded; no context can have rewritten it yet.
            position_rows: facts
                .learned_positions
                .then(|| unsafe { sys::llama_model_n_ctx_train(ptr.as_ptr()) }),
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
        self.ptr.as_ptr()
    }

    /// The model's vocabulary.
    pub fn vocab(&self) -> Vocab<'_> {
        // SAFETY: the model is valid; the vocab lives as long as the model.
        let ptr = unsafe { sys::llama_model_get_vocab(self.as_ptr()) };
        Vocab::new(ptr)
    }

    /// Short description, e.g. `qwen3next 80B.A3B Q4_0`.
    pub fn description(&self) -> String {
        // SAFETY: valid model; the closure fills at most `len` bytes.
        read_string(|buf, len| unsafe { sys::llama_model_desc(self.as_ptr(), buf, len) })
            .unwrap_or_default()
    }

    /// Total size of all tensors in bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_size(self.as_ptr()) }
    }

    /// Number of parameters.
    pub fn n_params(&self) -> u64 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_params(self.as_ptr()) }
    }

    /// Context length the model was trained with.
    pub fn n_ctx_train(&self) -> i32 {
        // Creating a YaRN context may rewrite this value (under the write lock).
        let _guard = crate::context::adapters_read(self);
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_ctx_train(self.as_ptr()) }
    }

    /// Embedding size.
    pub fn n_embd(&self) -> i32 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_embd(self.as_ptr()) }
    }

    /// Number of layers.
    pub fn n_layer(&self) -> i32 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_layer(self.as_ptr()) }
    }

    /// Number of attention heads.
    pub fn n_head(&self) -> i32 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_head(self.as_ptr()) }
    }

    /// Number of key/value heads (fewer than [`Model::n_head`] with grouped-query attention).
    pub fn n_head_kv(&self) -> i32 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_n_head_kv(self.as_ptr()) }
    }

    /// How llama.cpp rotates positions for this architecture: one of the
    /// `llamacpp_sys::LLAMA_ROPE_TYPE_*` values (`NONE` for models without RoPE,
    /// `NORM` for llama, `NEOX` for qwen3next, `IMROPE` for qwen35moe, ...).
    pub fn rope_type(&self) -> i32 {
        // SAFETY: valid model.
        unsafe { sys::llama_model_rope_type(self.as_ptr()) }
    }

    /// Whether the model has recurrent state (Mamba, RWKV, ...).
    pub fn is_recurrent(&self) -> bool {
        // SAFETY: valid model.
        unsafe { sys::llama_model_is_recurrent(self.as_ptr()) }
    }

    /// Whether the model mixes attention and recurrent layers (Qwen3-Next, ...).
    pub fn is_hybrid(&self) -> bool {
        // SAFETY: valid model.
        unsafe { sys::llama_model_is_hybrid(self.as_ptr()) }
    }

    /// Whether the model has an encoder (T5-style).
    pub fn has_encoder(&self) -> bool {
        // SAFETY: valid model.
        unsafe { sys::llama_model_has_encoder(self.as_ptr()) }
    }

    /// The value of one metadata key, e.g. `general.architecture`.
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = c_string(key).ok()?;
        // SAFETY: valid model and key; the closure fills at most `len` bytes.
        read_string(|buf, len| unsafe {
            sys::llama_model_meta_val_str(self.as_ptr(), key.as_ptr(), buf, len)
        })
    }

    /// Every metadata key and value, in file order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        // SAFETY: valid model.
        let n = unsafe { sys::llama_model_meta_count(self.as_ptr()) };
        (0..n)
            .filter_map(|i| {
                // SAFETY: i < meta_count; the closures fill at most `len` bytes.
                let k = read_string(|b, l| unsafe {
                    sys::llama_model_meta_key_by_index(self.as_ptr(), i, b, l)
                })?;
                // SAFETY: as above.
                let v = read_string(|b, l| unsafe {
                    sys::llama_model_meta_val_str_by_index(self.as_ptr(), i, b, l)
                })?;
                Some((k, v))
            })
            .collect()
    }

    /// The architecture name (`general.architecture`).
    pub fn architecture(&self) -> Option<String> {
        self.meta("general.architecture")
    }

    /// The model's chat template (the default one, or a named one), if it has one.
    pub fn chat_template(&self, name: Option<&str>) -> Option<String> {
        let name = name.map(c_string).transpose().ok()?;
        // SAFETY: valid model; name is NULL or NUL-terminated; returns NULL or a string owned by the model.
        let p = unsafe {
            sys::llama_model_chat_template(
                self.as_ptr(),
                name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            )
        };
        // SAFETY: p is NULL or a valid NUL-terminated string.
        (!p.is_null()).then(|| unsafe { cstr_lossy(p) })
    }
}

/// Calls a C "write into buf of len, return needed length" function, growing
/// the buffer once if needed. Returns `None` when the function reports an error.
pub(crate) fn read_string(mut f: impl FnMut(*mut c_char, usize) -> i32) -> Option<String> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = f(buf.as_mut_ptr().cast(), buf.len());
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.resize(n + 1, 0);
    }
}
