//! Checks of a model file's metadata before llama.cpp loads it, and of the loaded vocabulary.
//!
//! llama.cpp trusts many metadata values it reads: some ranges it `GGML_ASSERT`s while
//! loading, others only fail a `GGML_ASSERT` in a ggml kernel at the first decode, or in
//! `llama_tokenize`. Either way the process aborts instead of the load failing. Here the
//! same conditions are evaluated on the file's metadata with the `kv_override`s applied
//! the way llama.cpp applies them, and reported as an error naming the key and value.
//! One module per group: layer/expert counts, rotary embedding, other hyperparameters,
//! the token list, split files, and (after the load) the special tokens.

mod counts;
mod hparams;
mod rope;
mod special;
mod split;
mod vocab;

use std::ffi::CStr;

use llamacpp_ggml::gguf::Gguf;
use llamacpp_sys as sys;

use crate::backend;
use crate::model_params::{KvOverride, ModelParams};

pub(crate) use special::check_loaded;

/// A model's metadata (no tensor data): the shared GGUF reader, whose getters check the
/// value types and indices ggml's own getters abort on. Read from a file (owned, freed on
/// drop) or borrowed from the caller (`Model::from_metadata`).
pub(crate) struct Meta<'g>(MetaSource<'g>);

enum MetaSource<'g> {
    Owned(Gguf),
    Borrowed(&'g Gguf),
}

impl<'g> Meta<'g> {
    /// The metadata of a model built in memory.
    pub(crate) fn borrowed(gguf: &'g Gguf) -> Self {
        Meta(MetaSource::Borrowed(gguf))
    }
}

impl Meta<'static> {
    /// Reads the metadata of `path`; `None` when it is not readable as GGUF.
    pub(crate) fn open(path: &CStr) -> Option<Self> {
        Meta::read(path).ok()
    }

    /// Reads the metadata of `path`, or says why ggml's parser refused it (its log and the
    /// exception it threw, if any).
    pub(crate) fn read(path: &CStr) -> Result<Self, String> {
        let (gguf, log) = backend::capture_log(|| Gguf::open_c(path));
        let e = match gguf {
            Ok(gguf) => return Ok(Meta(MetaSource::Owned(gguf))),
            Err(llamacpp_ggml::Error::GgufRead { reason, .. }) => reason,
            Err(e) => e.to_string(),
        };
        let why = [log, e]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Err(if why.is_empty() {
            "not a readable GGUF file".into()
        } else {
            why
        })
    }
}

impl Meta<'_> {
    fn gguf(&self) -> &Gguf {
        match &self.0 {
            MetaSource::Owned(g) => g,
            MetaSource::Borrowed(g) => g,
        }
    }

    /// Whether the file holds a tensor of that name.
    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.gguf().tensor_index(name).is_some()
    }

    pub(crate) fn id(&self, key: &str) -> Option<i64> {
        self.gguf().key_id(key)
    }

    /// The GGUF type of `key`, if present.
    pub(crate) fn kv_type(&self, key: &str) -> Option<sys::gguf_type> {
        self.gguf().kv_type(key)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.gguf().get_str(key)
    }

    fn f32(&self, key: &str) -> Option<f32> {
        self.gguf().get_f32(key)
    }

    /// A `uint16` value.
    fn u16(&self, key: &str) -> Option<u16> {
        self.gguf().get_u16(key)
    }

    /// A `uint32` scalar, or the elements of a `uint32`/`int32` array (the per-layer
    /// form). Other types are left to llama.cpp, which rejects them.
    fn u32s(&self, key: &str) -> Option<Vec<u32>> {
        self.gguf().u32s(key)
    }

    /// The elements of an `int32` array.
    pub(crate) fn i32_array(&self, key: &str) -> Option<Vec<i32>> {
        self.gguf().i32_array(key)
    }

    /// The elements of a string array as llama.cpp reads them (`std::string` from the C
    /// string, so each stops at its first NUL), passed to `f` one by one.
    pub(crate) fn for_each_str(&self, key: &str, f: impl FnMut(usize, &[u8])) -> bool {
        self.gguf().for_each_str(key, f)
    }
}

/// The metadata llama.cpp will see: the file's values with the overrides applied.
pub(crate) struct Keys<'a> {
    meta: &'a Meta<'a>,
    params: &'a ModelParams,
    /// `general.architecture`.
    pub arch: String,
}

impl Keys<'_> {
    /// `<arch>.<suffix>`.
    pub fn arch_key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    /// An integer key read into a `uint32_t`: an Int override (truncated as llama.cpp
    /// assigns it) replaces the value; an override of another type is ignored by
    /// llama.cpp, so the file's value stays. Per-layer arrays give all their elements.
    pub fn u32s(&self, key: &str) -> Option<Vec<u32>> {
        match self.params.int_override(key) {
            Some(v) => Some(vec![v as u32]),
            None => self.meta.u32s(key),
        }
    }

    /// The largest value of [`Self::u32s`].
    pub fn u32_max(&self, key: &str) -> Option<u32> {
        self.u32s(key).map(|v| v.into_iter().max().unwrap_or(0))
    }

    /// The first (layer 0) value of [`Self::u32s`].
    pub fn u32_first(&self, key: &str) -> Option<u32> {
        self.u32s(key).and_then(|v| v.first().copied())
    }

    /// A float key: a Float override (narrowed to `f32` as llama.cpp assigns it) or the
    /// file's `float32`.
    pub fn f32(&self, key: &str) -> Option<f32> {
        match self.params.override_value(key) {
            Some(KvOverride::Float(v)) => Some(v as f32),
            _ => self.meta.f32(key),
        }
    }

    /// A string key: a Str override or the file's string.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.params.override_value(key) {
            Some(KvOverride::Str(v)) => Some(v),
            _ => self.meta.string(key),
        }
    }

    /// The file's raw metadata (for keys llama.cpp reads without overrides).
    pub fn meta(&self) -> &Meta<'_> {
        self.meta
    }
}

/// The reason for an error: `what`, and that llama.cpp would abort on it.
pub(crate) fn abort_reason(what: String) -> String {
    format!("{what} (llama.cpp would abort on it)")
}

/// What the checks learnt about a file that the safe API needs later.
#[derive(Debug, Default)]
pub(crate) struct FileFacts {
    /// The model reads a learned position embedding (`position_embd.weight`, one row per
    /// position up to the training context: GPT-2, StarCoder, BERT, ...): positions past
    /// its rows fail ggml's bounds assert in `get_rows`.
    pub learned_positions: bool,
}

/// Evaluates, for the file at `path` with the overrides of `params`, the conditions
/// llama.cpp asserts while loading or at first use; `Err` names the first that fails.
pub(crate) fn check_file(path: &CStr, params: &ModelParams) -> Result<FileFacts, String> {
    let Some(meta) = Meta::open(path) else {
        // Not readable as GGUF: llama.cpp reports that itself, without asserting.
        return Ok(FileFacts::default());
    };
    // Split files are checked before the model's own keys: llama.cpp opens them first.
    let parts = split::check(path, &meta)?;
    let learned_positions = parts.iter().any(|m| m.has_tensor(POSITION_EMBD));
    let mut facts = check_meta(&meta, params)?;
    facts.learned_positions |= learned_positions;
    Ok(facts)
}

/// The tensor of a learned position embedding.
pub(crate) const POSITION_EMBD: &str = "position_embd.weight";

/// [`check_file`] without the split files: the checks of one model's metadata `meta` (read
/// from its first file, or given for a model built in memory) with the overrides of
/// `params`.
pub(crate) fn check_meta(meta: &Meta<'_>, params: &ModelParams) -> Result<FileFacts, String> {
    let facts = FileFacts {
        learned_positions: meta.has_tensor(POSITION_EMBD),
    };
    // Read by llama.cpp without overrides; without it the load fails cleanly. A key of
    // another type fails it too, but after the loader made a ggml context it then leaks
    // (llama_model_loader's constructor throws before it takes ownership): refuse it here.
    let Some(arch) = meta.string("general.architecture") else {
        if meta.id("general.architecture").is_some() {
            return Err("general.architecture is not a string".into());
        }
        return Ok(facts);
    };
    let keys = Keys { meta, params, arch };
    counts::check(&keys)?;
    rope::check(&keys)?;
    hparams::check(&keys)?;
    vocab::check(&keys)?;
    Ok(facts)
}
