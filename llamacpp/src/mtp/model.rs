//! [`MtpModel`]: a model loaded with its MTP (NextN) layers, and the checks that it is one the
//! drafter can run.

use std::ops::Deref;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{Model, ModelParams};

/// The architectures whose MTP graph and hidden state this module was checked against in the
/// pinned llama.cpp (`src/models/qwen3next.cpp`): one NextN block, fed the post-norm hidden
/// state that the target also returns as its token embedding.
const SUPPORTED_ARCH: &str = "qwen3next";

/// A model loaded with its MTP (NextN) layers, checked to be one this module can draft with.
///
/// llama.cpp reports the NextN layer count from the file's metadata even when the layers were
/// not loaded (`load_mtp` off), and then aborts the process when an MTP context is created.
/// Only [`MtpModel::load`] makes one, always with `load_mtp` on, so holding an `MtpModel`
/// proves the layers are in memory. It dereferences to [`Model`] for everything else.
///
/// ```no_run
/// use llamacpp::mtp::MtpModel;
/// let model = MtpModel::load("qwen3-next.gguf", Default::default())?;
/// println!("{} NextN block(s)", model.n_layer_nextn());
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct MtpModel {
    model: Model,
}

impl std::fmt::Debug for MtpModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtpModel")
            .field("model", &self.model)
            .finish()
    }
}

impl MtpModel {
    /// Loads a GGUF model with its MTP layers (`params` with [`ModelParams::load_mtp`] forced
    /// on). Errors with [`Error::Speculative`] when the model has no MTP layers, more than the
    /// one block llama.cpp's Qwen3-Next MTP graph runs, or another architecture.
    pub fn load(path: impl AsRef<Path>, params: ModelParams) -> Result<MtpModel> {
        let model = Model::load(path, params.load_mtp(true))?;
        check_mtp_layers(&model)?;
        Ok(MtpModel { model })
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Gives the model back (its MTP layers stay loaded).
    pub fn into_model(self) -> Model {
        self.model
    }

    /// The number of MTP (NextN) blocks (1 for every model `load` accepts).
    pub fn n_layer_nextn(&self) -> i32 {
        n_layer_nextn(&self.model)
    }
}

impl Deref for MtpModel {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

fn n_layer_nextn(model: &Model) -> i32 {
    model.raw().n_layer_nextn()
}

/// Everything llama.cpp's MTP context asserts about the model (`graph_mtp` in
/// `src/models/qwen3next.cpp`) that the metadata can tell.
fn check_mtp_layers(model: &Model) -> Result<()> {
    let arch = model.architecture().unwrap_or_default();
    if arch != SUPPORTED_ARCH {
        return Err(Error::Speculative(format!(
            "MTP drafting supports {SUPPORTED_ARCH} models, not {arch:?}"
        )));
    }
    match n_layer_nextn(model) {
        0 => Err(Error::Speculative(
            "the model has no MTP (NextN) layers (nextn_predict_layers is 0 or missing)".into(),
        )),
        1 => Ok(()),
        n => Err(Error::Speculative(format!(
            "the model has {n} MTP (NextN) blocks; llama.cpp's {SUPPORTED_ARCH} MTP head runs exactly 1"
        ))),
    }
}
