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

use llamacpp_sys as sys;

use crate::backend;
use crate::error::c_string;
use crate::model_params::{KvOverride, ModelParams};

pub(crate) use special::check_loaded;

/// A file's metadata (no tensor data), freed on drop.
pub(crate) struct Meta(*mut sys::gguf_context);

impl Drop for Meta {
    fn drop(&mut self) {
        // SAFETY: a non-NULL context from gguf_init_from_file, freed once.
        unsafe { sys::gguf_free(self.0) }
    }
}

impl Meta {
    /// Reads the metadata of `path`; `None` when it is not readable as GGUF.
    pub(crate) fn open(path: &CStr) -> Option<Meta> {
        Meta::read(path).ok()
    }

    /// Reads the metadata of `path`, or says why ggml's parser refused it (its log and the
    /// exception it threw, if any).
    pub(crate) fn read(path: &CStr) -> Result<Meta, String> {
        let gp = sys::gguf_init_params {
            no_alloc: true,
            ctx: std::ptr::null_mut(),
        };
        let mut e = crate::boundary::ErrBuf::new();
        // SAFETY: NUL-terminated path; with ctx NULL only the gguf context is allocated; the
        // shim turns an exception (an allocation sized by the file) into NULL.
        let (ctx, log) = backend::capture_log(|| unsafe {
            sys::llama_sys_gguf_init_from_file(path.as_ptr(), gp, e.ptr(), e.len())
        });
        if !ctx.is_null() {
            return Ok(Meta(ctx));
        }
        let why = [log, e.text()]
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

    /// Whether the file holds a tensor of that name.
    pub(crate) fn has_tensor(&self, name: &CStr) -> bool {
        // SAFETY: live context, NUL-terminated name.
        unsafe { sys::gguf_find_tensor(self.0, name.as_ptr()) >= 0 }
    }

    pub(crate) fn id(&self, key: &str) -> Option<i64> {
        let k = c_string(key).ok()?;
        // SAFETY: live context, NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(self.0, k.as_ptr()) };
        (id >= 0).then_some(id)
    }

    /// The GGUF type of `key`, if present.
    pub(crate) fn kv_type(&self, key: &str) -> Option<sys::gguf_type> {
        let id = self.id(key)?;
        // SAFETY: live context and key id.
        Some(unsafe { sys::gguf_get_kv_type(self.0, id) })
    }

    fn string(&self, key: &str) -> Option<String> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; the type is checked before reading.
        unsafe {
            (sys::gguf_get_kv_type(self.0, id) == sys::GGUF_TYPE_STRING)
                .then(|| backend::cstr_lossy(sys::gguf_get_val_str(self.0, id)))
        }
    }

    fn f32(&self, key: &str) -> Option<f32> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; the type is checked before reading.
        unsafe {
            (sys::gguf_get_kv_type(self.0, id) == sys::GGUF_TYPE_FLOAT32)
                .then(|| sys::gguf_get_val_f32(self.0, id))
        }
    }

    /// A `uint32` scalar, or the elements of a `uint32`/`int32` array (the per-layer
    /// form). Other types are left to llama.cpp, which rejects them.
    fn u32s(&self, key: &str) -> Option<Vec<u32>> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; every read matches the type just checked,
        // and the slice covers exactly the array's `n` elements.
        unsafe {
            match sys::gguf_get_kv_type(self.0, id) {
                sys::GGUF_TYPE_UINT32 => Some(vec![sys::gguf_get_val_u32(self.0, id)]),
                sys::GGUF_TYPE_ARRAY => {
                    let n = sys::gguf_get_arr_n(self.0, id);
                    let data = sys::gguf_get_arr_data(self.0, id);
                    match sys::gguf_get_arr_type(self.0, id) {
                        sys::GGUF_TYPE_UINT32 | sys::GGUF_TYPE_INT32 if !data.is_null() => {
                            Some(std::slice::from_raw_parts(data.cast::<u32>(), n).to_vec())
                        }
                        _ => None,
                    }
                }
                _ => None,
            }
        }
    }

    /// The elements of an `int32` array.
    pub(crate) fn i32_array(&self, key: &str) -> Option<Vec<i32>> {
        let id = self.id(key)?;
        // SAFETY: live context and key id; the data is read only for an int32 array,
        // as its `n` elements.
        unsafe {
            if sys::gguf_get_kv_type(self.0, id) != sys::GGUF_TYPE_ARRAY
                || sys::gguf_get_arr_type(self.0, id) != sys::GGUF_TYPE_INT32
            {
                return None;
            }
            let n = sys::gguf_get_arr_n(self.0, id);
            let data = sys::gguf_get_arr_data(self.0, id);
            (!data.is_null()).then(|| std::slice::from_raw_parts(data.cast::<i32>(), n).to_vec())
        }
    }

    /// The elements of a string array as llama.cpp reads them (`std::string` from the C
    /// string, so each stops at its first NUL), passed to `f` one by one.
    pub(crate) fn for_each_str(&self, key: &str, mut f: impl FnMut(usize, &[u8])) -> bool {
        let Some(id) = self.id(key) else {
            return false;
        };
        // SAFETY: live context and key id; strings are read only for a string array and
        // indices below its length; gguf keeps each string NUL-terminated.
        unsafe {
            if sys::gguf_get_kv_type(self.0, id) != sys::GGUF_TYPE_ARRAY
                || sys::gguf_get_arr_type(self.0, id) != sys::GGUF_TYPE_STRING
            {
                return false;
            }
            for i in 0..sys::gguf_get_arr_n(self.0, id) {
                let p = sys::gguf_get_arr_str(self.0, id, i);
                if !p.is_null() {
                    f(i, CStr::from_ptr(p).to_bytes());
                }
            }
        }
        true
    }
}

/// The metadata llama.cpp will see: the file's values with the overrides applied.
pub(crate) struct Keys<'a> {
    meta: &'a Meta,
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
    pub fn meta(&self) -> &Meta {
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
    let facts = FileFacts {
        learned_positions: std::iter::once(&meta)
            .chain(&parts)
            .any(|m| m.has_tensor(c"position_embd.weight")),
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
    let keys = Keys {
        meta: &meta,
        params,
        arch,
    };
    counts::check(&keys)?;
    rope::check(&keys)?;
    hparams::check(&keys)?;
    vocab::check(&keys)?;
    Ok(facts)
}
