//! LoRA adapters: [`LoraAdapter`] owns a `llama_adapter_lora` of one model;
//! [`Context::set_lora_adapters`] applies a set of them with scales.
//!
//! Lifetimes: an adapter borrows its model, so it cannot outlive it (llama.cpp
//! would free it with the model and leave the handle dangling). A context keeps
//! a clone of every adapter it applies, so dropping the caller's handle while a
//! context still computes with it frees nothing.

use std::path::Path;
use std::sync::Arc;

use llamacpp_sys as sys;

use crate::backend;
use crate::context::Context;
use crate::error::{Error, Result, c_string};
use crate::model::Model;
use crate::raw::adapter::{self, RawAdapter};
use crate::vocab::Token;

/// The owned C adapter; freed when the last [`LoraAdapter`] clone goes.
struct Handle<'m> {
    /// Always `Some` until dropped (taken in `Drop`, to free or leak it).
    raw: Option<RawAdapter<'m>>,
    model: &'m Model,
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        let raw = self.raw.take();
        // Dropped by a callback running inside a decode or context creation on this model
        // (which holds the lock for reading), waiting for the write lock would never end:
        // the adapter is leaked instead of freed.
        let Ok(_guard) = crate::context::adapters_write(self.model) else {
            std::mem::forget(raw);
            return;
        };
        // Freed under the lock; no context uses it any more (each context holds a clone
        // of the handles it applies).
        drop(raw);
    }
}

/// A LoRA adapter loaded for one [`Model`]. Cloning is cheap (shared handle).
///
/// ```no_run
/// use llamacpp::{Context, ContextParams, LoraAdapter, Model, ModelParams};
///
/// # fn main() -> llamacpp::Result<()> {
/// let model = Model::load("model.gguf", ModelParams::default())?;
/// let lora = LoraAdapter::load(&model, "adapter.gguf")?;
/// println!("alpha = {:?}", lora.meta("adapter.lora.alpha"));
/// let mut ctx = Context::new(&model, ContextParams::default())?;
/// ctx.set_lora_adapters(&[(&lora, 0.8)])?;
/// // ... decode with the adapter ...
/// ctx.clear_lora_adapters();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LoraAdapter<'m> {
    handle: Arc<Handle<'m>>,
}

impl std::fmt::Debug for LoraAdapter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoraAdapter")
            .field("name", &self.meta("general.name"))
            .field("alpha", &self.meta("adapter.lora.alpha"))
            .finish()
    }
}

/// GGUF keys llama.cpp reads from an adapter with a fixed type; a value of another
/// type makes its getter abort the process, so they are checked first.
const TYPED_KEYS: [(&str, sys::gguf_type, &str); 4] = [
    ("general.type", sys::GGUF_TYPE_STRING, "string"),
    ("general.architecture", sys::GGUF_TYPE_STRING, "string"),
    ("adapter.type", sys::GGUF_TYPE_STRING, "string"),
    ("adapter.lora.alpha", sys::GGUF_TYPE_FLOAT32, "float32"),
];

/// Reads the file's metadata with ggml's GGUF parser (no tensor data) and checks
/// the types of the keys llama.cpp's adapter loader reads unchecked.
fn check_metadata(c_path: &std::ffi::CStr) -> std::result::Result<(), String> {
    let meta = crate::model_check::Meta::read(c_path)?;
    for (key, want, name) in TYPED_KEYS {
        if meta.kv_type(key).is_some_and(|t| t != want) {
            return Err(format!("metadata {key} must be a {name}"));
        }
    }
    Ok(())
}

impl<'m> LoraAdapter<'m> {
    /// Loads a LoRA adapter GGUF for `model`. A missing or malformed file, an
    /// adapter for another architecture, or tensors that do not match the model's
    /// are errors.
    pub fn load(model: &'m Model, path: impl AsRef<Path>) -> Result<Self> {
        backend::init();
        let path = path.as_ref();
        let fail = |reason: String| Error::AdapterLoad {
            path: path.into(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        let c_path = crate::error::path_c_string(path)?;
        check_metadata(&c_path).map_err(fail)?;
        let _guard = crate::context::adapters_write(model)?;
        let (raw, log) = backend::capture_log(|| RawAdapter::load(model.raw(), &c_path));
        let raw = raw.ok_or_else(|| {
            fail(if log.is_empty() {
                "llama.cpp rejected the adapter".into()
            } else {
                log
            })
        })?;
        Ok(Self {
            handle: Arc::new(Handle {
                raw: Some(raw),
                model,
            }),
        })
    }

    /// The raw adapter handle.
    fn raw(&self) -> Option<&RawAdapter<'m>> {
        self.handle.raw.as_ref()
    }

    /// The model this adapter belongs to.
    pub fn model(&self) -> &'m Model {
        self.handle.model
    }

    /// One scalar metadata value as a string (arrays are not available).
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = c_string(key).ok()?;
        self.raw()?.meta(&key)
    }

    /// Every scalar metadata key and value.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let Some(raw) = self.raw() else {
            return Vec::new();
        };
        (0..raw.meta_count())
            .filter_map(|i| raw.meta_by_index(i))
            .collect()
    }

    /// `adapter.lora.alpha` (0 when the file has none).
    pub fn alpha(&self) -> f32 {
        self.meta("adapter.lora.alpha")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0)
    }

    /// The invocation tokens of an activated LoRA (empty for a plain LoRA). Ids
    /// outside the model's vocabulary are an error.
    pub fn alora_invocation_tokens(&self) -> Result<Vec<Token>> {
        let ids = self
            .raw()
            .map_or(&[][..], RawAdapter::alora_invocation_tokens);
        let vocab = self.model().vocab();
        ids.iter().map(|&id| vocab.token(id)).collect()
    }
}

impl<'m> Context<'m> {
    /// Applies exactly these adapters with these scales (replacing the previous set).
    /// Scale 0 leaves an adapter out. Every adapter must belong to this context's
    /// model (the same loaded [`Model`], not just the same file), appear once and
    /// have a finite scale.
    pub fn set_lora_adapters(&mut self, adapters: &[(&LoraAdapter<'m>, f32)]) -> Result<()> {
        for (i, (a, scale)) in adapters.iter().enumerate() {
            if !std::ptr::eq(a.model(), self.model()) {
                return Err(Error::AdapterModel);
            }
            if !scale.is_finite() {
                return Err(Error::AdapterScale(*scale));
            }
            if adapters[..i]
                .iter()
                .any(|(b, _)| Arc::ptr_eq(&a.handle, &b.handle))
            {
                return Err(Error::AdapterListedTwice);
            }
        }
        let raws: Vec<&RawAdapter<'m>> = adapters.iter().filter_map(|(a, _)| a.raw()).collect();
        let scales: Vec<f32> = adapters.iter().map(|(_, s)| *s).collect();
        // Every adapter was checked to belong to this model above; each stays alive
        // through the clones stored below.
        if !adapter::set_lora_adapters(self, &raws, &scales) {
            return Err(Error::AdapterModel);
        }
        // Replace the kept clones only now: the context no longer points at old ones.
        self.loras = adapters.iter().map(|(a, _)| (*a).clone()).collect();
        Ok(())
    }

    /// Removes every LoRA adapter from this context.
    pub fn clear_lora_adapters(&mut self) {
        // Infallible: an empty set passes every check.
        let _ = self.set_lora_adapters(&[]);
    }

    /// The adapters applied by the last [`set_lora_adapters`](Self::set_lora_adapters).
    pub fn lora_adapters(&self) -> &[LoraAdapter<'m>] {
        &self.loras
    }
}
