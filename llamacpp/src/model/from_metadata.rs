//! [`Model::from_metadata`]: a model built in memory from GGUF metadata and a callback that
//! writes each tensor's data (`llama_model_init_from_user`), and the [`TensorData`] that
//! callback gets.

use std::fmt::Display;
use std::sync::RwLock;

use llamacpp_ggml::TensorType;
use llamacpp_ggml::gguf::Gguf;

use super::Model;
use crate::backend;
use crate::error::{Error, Result};
use crate::model_check::{Meta, POSITION_EMBD, check_loaded, check_meta};
use crate::model_params::ModelParams;
use crate::raw::model::{LoadParams, ProgressFn, RawModel, RawTensor};

/// One tensor of a model being built by [`Model::from_metadata`], handed to its fill
/// callback: llama.cpp has created and allocated it (in RAM or on a device) and expects its
/// data. Every byte of it must be written with [`TensorData::write`] before the callback
/// returns.
pub struct TensorData<'t> {
    raw: RawTensor<'t>,
    name: String,
    n_bytes: usize,
    /// The byte ranges written so far, `start..end`.
    written: Vec<(usize, usize)>,
}

impl std::fmt::Debug for TensorData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorData")
            .field("name", &self.name)
            .field("ggml_type", &self.ggml_type())
            .field("shape", &self.shape())
            .field("n_bytes", &self.n_bytes)
            .finish()
    }
}

impl<'t> TensorData<'t> {
    fn new(raw: RawTensor<'t>) -> Self {
        TensorData {
            name: raw.name(),
            n_bytes: raw.n_bytes(),
            raw,
            written: Vec::new(),
        }
    }

    /// The tensor's name, e.g. `blk.0.attn_norm.weight`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its storage type, when it is one [`TensorType`] names (the type of the tensor info
    /// of that name in the metadata; `F32` for tensors the metadata does not list).
    pub fn tensor_type(&self) -> Option<TensorType> {
        TensorType::from_ggml(self.raw.ggml_type())
    }

    /// Its storage type as ggml's raw `ggml_type` value (`llamacpp_sys::GGML_TYPE_*`).
    pub fn ggml_type(&self) -> llamacpp_sys::ggml_type {
        self.raw.ggml_type()
    }

    /// Its dimensions as ggml's `ne`, innermost (the row) first; unused ones are 1. llama.cpp
    /// derives them from the metadata's hyperparameters, not from the tensor infos.
    pub fn shape(&self) -> [i64; 4] {
        self.raw.shape()
    }

    /// The size of its data in bytes.
    pub fn n_bytes(&self) -> usize {
        self.n_bytes
    }

    /// Copies `bytes` into the tensor's data, starting `offset` bytes in.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when `offset + bytes.len()` exceeds [`TensorData::n_bytes`]
    /// (nothing is written); [`Error::ModelBuild`] when the tensor has no memory.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<()> {
        let end = offset
            .checked_add(bytes.len())
            .filter(|&e| e <= self.n_bytes);
        let Some(end) = end else {
            return Err(Error::OutOfRange {
                what: "tensor write end (offset + length)",
                value: i64::try_from(offset.saturating_add(bytes.len())).unwrap_or(i64::MAX),
                expected: format!("at most {} bytes of {}", self.n_bytes, self.name),
            });
        };
        if !self.raw.write(offset, bytes) {
            return Err(Error::ModelBuild(format!(
                "tensor {} has no memory to write to",
                self.name
            )));
        }
        if offset < end {
            self.written.push((offset, end));
        }
        Ok(())
    }

    /// The first byte range not written yet, if any.
    fn first_gap(&mut self) -> Option<(usize, usize)> {
        self.written.sort_unstable();
        let mut covered = 0;
        for &(start, end) in &self.written {
            if start > covered {
                return Some((covered, start));
            }
            covered = covered.max(end);
        }
        (covered < self.n_bytes).then_some((covered, self.n_bytes))
    }
}

impl Model {
    /// Builds a model without a file, from GGUF metadata and a callback that writes each
    /// tensor's data (llama.cpp's `llama_model_init_from_user`).
    ///
    /// `meta` holds the metadata a model file would (architecture, hyperparameters,
    /// tokenizer); its tensor infos, if any, only give tensor types (a tensor it does not
    /// list is `F32`): llama.cpp derives every shape from the hyperparameters. It creates
    /// every tensor the architecture can have, optional ones included (biases, scales), and
    /// calls `fill` once for each, in its own order, to write all of its bytes through
    /// [`TensorData::write`].
    ///
    /// The metadata goes through the same checks as [`Model::load`] (values llama.cpp
    /// would abort on), with the overrides of `params`. `params` is used as for a file
    /// (devices, GPU layers, overrides, progress) except for the load mode, which llama.cpp
    /// ignores here. llama.cpp counts [`Model::n_params`] and [`Model::size`] from a file's
    /// tensors, so both are 0 for a model built this way.
    ///
    /// llama.cpp sizes each tensor from the hyperparameters alone here; a size of 0 (an
    /// `embedding_length` of 0, say) is a load error on this project's patched build (patch
    /// 0032) and a process abort on the unpatched upstream build.
    ///
    /// ```
    /// use llamacpp::{Model, ModelParams};
    /// use llamacpp_synth::{InMemoryFill, ModelSpec, Preset, SynthOptions};
    ///
    /// llamacpp::backend::set_logging(false);
    /// let spec = ModelSpec::from_options(&SynthOptions::new(Preset::LlamaTiny))?;
    /// let mut values = InMemoryFill::new(&spec)?;
    /// let model = Model::from_metadata(&spec.metadata_gguf()?, ModelParams::default(), |t| {
    ///     let (name, ty, n) = (t.name().to_owned(), t.tensor_type(), t.n_bytes());
    ///     values.fill(&name, ty, n, |offset, bytes| t.write(offset, bytes))
    /// })?;
    /// values.finish()?;
    /// assert_eq!(model.architecture().as_deref(), Some("llama"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ModelBuild`] when the metadata checks refuse the model, when `fill` returns
    /// an error or leaves bytes of a tensor unwritten (the message names the tensor; `fill`
    /// is not called again), or when llama.cpp refuses the model (its log lines);
    /// [`Error::CallbackPanicked`] when `fill` or the progress callback panicked. In each
    /// case the partly built model is freed.
    pub fn from_metadata<E: Display>(
        meta: &Gguf,
        mut params: ModelParams,
        mut fill: impl FnMut(&mut TensorData<'_>) -> std::result::Result<(), E>,
    ) -> Result<Model> {
        backend::init();
        let facts = check_meta(&Meta::borrowed(meta), &params).map_err(Error::ModelBuild)?;
        let mut progress: Option<ProgressFn> = params.progress.take();
        let load_params = LoadParams::new(&mut params);
        #[cfg(feature = "rpc")]
        let rpc_endpoints = load_params.rpc_endpoints();
        // The first tensor that failed, and why; `fill` is not called after it.
        let mut failure: Option<String> = None;
        // Whether llama.cpp created a learned position embedding: the metadata need not list
        // that (F32) tensor, which decides the positions a context may use.
        let mut learned_positions = facts.learned_positions;
        let mut on_tensor = |raw: RawTensor<'_>| -> bool {
            let mut t = TensorData::new(raw);
            learned_positions |= t.name == POSITION_EMBD;
            let r = match fill(&mut t) {
                Err(e) => Err(e.to_string()),
                Ok(()) => match t.first_gap() {
                    Some((a, b)) => {
                        Err(format!("bytes {a}..{b} of {} were not written", t.n_bytes))
                    }
                    None => Ok(()),
                },
            };
            match r {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(format!("tensor {}: {e}", t.name));
                    false
                }
            }
        };
        let mut built = (None, String::new());
        let panicked = crate::panic::guarded(|| {
            built = backend::capture_log(|| {
                RawModel::init_from_user(meta, &load_params, progress.as_mut(), &mut on_tensor)
            });
        });
        drop(progress);
        drop(params);
        // A model llama.cpp returned after a failed or panicked callback is freed (dropped
        // here): its unwritten tensors hold whatever their buffers held.
        let (raw, log) = built;
        panicked?;
        if let Some(failure) = failure {
            return Err(Error::ModelBuild(failure));
        }
        let Some(raw) = raw else {
            #[cfg(feature = "rpc")]
            crate::rpc::check_endpoints(&rpc_endpoints)?;
            return Err(Error::ModelBuild(if log.is_empty() {
                "llama.cpp returned NULL (cancelled?)".into()
            } else {
                log
            }));
        };
        let model = Model {
            // A model just built: no context can have rewritten `n_ctx_train` yet.
            position_rows: learned_positions.then(|| raw.n_ctx_train()),
            raw,
            adapters_lock: RwLock::new(()),
            fingerprint: std::sync::OnceLock::new(),
            #[cfg(feature = "rpc")]
            rpc_endpoints,
        };
        #[cfg(feature = "rpc")]
        crate::rpc::check_endpoints(&model.rpc_endpoints)?;
        check_loaded(&model).map_err(Error::ModelBuild)?;
        Ok(model)
    }
}
