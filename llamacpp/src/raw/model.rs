//! [`RawModel`]: the owned `llama_model`, its load call and its getters.

use std::ffi::{CStr, c_char, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use llamacpp_ggml::gguf::Gguf;

use super::backend::cstr_lossy;
use super::vocab::RawVocab;
use crate::model_params::ModelParams;

/// The load progress callback a [`ModelParams`] carries.
pub(crate) type ProgressFn = Box<dyn FnMut(f32) -> bool + Send>;

extern "C" fn progress_trampoline(p: f32, user: *mut c_void) -> bool {
    // SAFETY: `user` is the `&mut ProgressFn` `RawModel::load` passed, which it borrows
    // mutably for the whole load, so nothing else touches it while C calls this.
    let f = unsafe { &mut *user.cast::<ProgressFn>() };
    // A panic must not unwind into C: it cancels the load, which then reports it.
    crate::panic::catch("progress", || f(p)).unwrap_or(false)
}

/// What [`RawModel::init_from_user`] hands its trampoline.
struct FillState<'f, 'g> {
    fill: &'f mut (dyn FnMut(RawTensor<'_>) -> bool + 'g),
    /// Set once `fill` returned `false` or panicked: later tensors are left alone.
    stopped: bool,
}

extern "C" fn fill_trampoline(tensor: *mut sys::ggml_tensor, user: *mut c_void) {
    // SAFETY: `user` is the `FillState` that `RawModel::init_from_user` passed, alive and
    // borrowed mutably for the whole call, so nothing else touches it while C calls this.
    let state = unsafe { &mut *user.cast::<FillState<'_, '_>>() };
    let Some(tensor) = NonNull::new(tensor) else {
        return;
    };
    if state.stopped {
        return;
    }
    let tensor = RawTensor {
        ptr: tensor,
        _call: PhantomData,
    };
    // A panic must not unwind into C: it stops the filling; `panic::guarded` reports it.
    let go_on = crate::panic::catch("set_tensor_data", || (state.fill)(tensor));
    state.stopped = go_on != Some(true);
}

/// A tensor llama.cpp has just created and allocated, handed to the fill callback of
/// [`RawModel::init_from_user`]; valid for that callback only (the lifetime).
pub(crate) struct RawTensor<'t> {
    ptr: NonNull<sys::ggml_tensor>,
    _call: PhantomData<&'t mut sys::ggml_tensor>,
}

impl RawTensor<'_> {
    /// The tensor's name.
    pub(crate) fn name(&self) -> String {
        // SAFETY: a live tensor (for `'t`); `name` is a fixed array that ggml keeps
        // NUL-terminated (`ggml_set_name` truncates with strncpy and terminates it).
        unsafe { cstr_lossy((*self.ptr.as_ptr()).name.as_ptr()) }
    }

    /// The `ggml_type`.
    pub(crate) fn ggml_type(&self) -> sys::ggml_type {
        // SAFETY: a live tensor; a plain field read.
        unsafe { (*self.ptr.as_ptr()).type_ }
    }

    /// The dimensions (`ne`), innermost first.
    pub(crate) fn shape(&self) -> [i64; 4] {
        // SAFETY: a live tensor; a plain field read.
        unsafe { (*self.ptr.as_ptr()).ne }
    }

    /// The size of its data in bytes.
    pub(crate) fn n_bytes(&self) -> usize {
        // SAFETY: a live tensor of a valid type (llama.cpp created it); only reads it.
        unsafe { sys::ggml_nbytes(self.ptr.as_ptr()) }
    }

    /// Whether the tensor has memory to write to: ggml's setter aborts when it has no
    /// backend buffer or no data pointer (`no_alloc`).
    pub(crate) fn is_allocated(&self) -> bool {
        // SAFETY: a live tensor; `view_src`, when not NULL, is another live tensor of the
        // same context (ggml sets it for views only); plain field reads.
        unsafe {
            let t = &*self.ptr.as_ptr();
            let buffer = if t.view_src.is_null() {
                t.buffer
            } else {
                (*t.view_src).buffer
            };
            !buffer.is_null() && !t.data.is_null()
        }
    }

    /// Copies `bytes` into the tensor's data at `offset`; `false` (nothing written) when
    /// they do not fit in it or it has no memory, which ggml would abort on.
    pub(crate) fn write(&mut self, offset: usize, bytes: &[u8]) -> bool {
        let fits = offset
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.n_bytes());
        if !fits || !self.is_allocated() {
            return false;
        }
        if bytes.is_empty() {
            return true;
        }
        // SAFETY: a live tensor with a buffer and data (checked above); `offset +
        // bytes.len() <= ggml_nbytes` (checked above), the condition ggml asserts; `bytes`
        // is readable for its length and ggml copies it before returning.
        unsafe {
            sys::ggml_backend_tensor_set(
                self.ptr.as_ptr(),
                bytes.as_ptr().cast(),
                offset,
                bytes.len(),
            )
        };
        true
    }
}

/// `llama_model_params` aimed at the arrays of the [`ModelParams`] it borrows: while it
/// lives, those arrays can be neither moved nor changed, so the pointers stay valid.
pub(crate) struct LoadParams<'p> {
    raw: sys::llama_model_params,
    _arrays: PhantomData<&'p mut ModelParams>,
}

impl<'p> LoadParams<'p> {
    /// Points the C struct at the arrays `params` owns (see `ModelParams::raw_for_load`).
    pub(crate) fn new(params: &'p mut ModelParams) -> Self {
        LoadParams {
            raw: params.raw_for_load(),
            _arrays: PhantomData,
        }
    }

    /// The C struct, with `progress` (when given) as its progress callback: valid while
    /// `self` and `progress` are borrowed.
    fn with_progress(&self, progress: Option<&mut ProgressFn>) -> sys::llama_model_params {
        let mut raw = self.raw;
        if let Some(f) = progress {
            raw.progress_callback = Some(progress_trampoline);
            raw.progress_callback_user_data = (f as *mut ProgressFn).cast();
        }
        raw
    }

    /// The endpoints of the RPC servers whose devices the load may use.
    #[cfg(feature = "rpc")]
    pub(crate) fn rpc_endpoints(&self) -> Vec<String> {
        // SAFETY: `raw.devices` is NULL or the NULL-terminated list the borrowed params
        // own (`raw_for_load` terminates it), of devices `ModelParams::devices` looked up in
        // the registry.
        crate::rpc::model_endpoints(unsafe { super::backend::RawDevice::list(self.raw.devices) })
    }
}

/// llama.cpp's default model parameters (a plain struct, no pointers into Rust memory).
pub(crate) fn default_params() -> sys::llama_model_params {
    // SAFETY: takes nothing and returns a plain struct by value.
    unsafe { sys::llama_model_default_params() }
}

/// The most devices llama.cpp takes in a device list or tensor split.
pub(crate) fn max_devices() -> usize {
    // SAFETY: a constant getter without arguments.
    unsafe { sys::llama_max_devices() }
}

/// The most tensor buffer-type overrides llama.cpp takes.
pub(crate) fn max_tensor_buft_overrides() -> usize {
    // SAFETY: a constant getter without arguments.
    unsafe { sys::llama_max_tensor_buft_overrides() }
}

/// An owned `llama_model`, freed on drop, with its vocabulary.
pub(crate) struct RawModel {
    ptr: NonNull<sys::llama_model>,
    /// `llama_model_get_vocab` at load: the vocabulary is a member of the model, so this
    /// lives exactly as long as `ptr`.
    vocab: NonNull<sys::llama_vocab>,
}

impl Drop for RawModel {
    fn drop(&mut self) {
        // SAFETY: we own the model; every borrow of it (vocab, contexts, adapters) holds
        // a borrow of this value, so all ended before drop.
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) }
    }
}

impl RawModel {
    /// Loads the model file at `path`; `None` when llama.cpp returns NULL (its log says
    /// why). `progress`, when given, is called with the progress in `[0, 1]`; `false`
    /// cancels the load.
    pub(crate) fn load(
        path: &CStr,
        params: &LoadParams<'_>,
        progress: Option<&mut ProgressFn>,
    ) -> Option<RawModel> {
        let raw = params.with_progress(progress);
        // SAFETY: the path is NUL-terminated; the arrays `raw` points into are borrowed
        // (unchangeable) through `params` and the progress closure through `progress`
        // for the whole call; llama.cpp catches its own exceptions and returns NULL.
        let ptr = unsafe { sys::llama_model_load_from_file(path.as_ptr(), raw) };
        RawModel::from_ptr(ptr)
    }

    /// Builds a model from `meta` (metadata, plus tensor infos that give tensor types)
    /// without a file (`llama_model_init_from_user`): llama.cpp creates every tensor the
    /// architecture can have, allocates it, and hands it to `fill`, one by one. `None` when
    /// llama.cpp returns NULL (its log says why). After `fill` returns `false` or panics
    /// (the panic is caught and kept for `panic::guarded`), it is not called again.
    pub(crate) fn init_from_user(
        meta: &Gguf,
        params: &LoadParams<'_>,
        progress: Option<&mut ProgressFn>,
        fill: &mut dyn FnMut(RawTensor<'_>) -> bool,
    ) -> Option<RawModel> {
        let raw = params.with_progress(progress);
        let mut state = FillState {
            fill,
            stopped: false,
        };
        // llama.cpp only reads `meta` and keeps no pointer into it after returning; it
        // catches its own exceptions around the whole load (`llama_model_load`) and returns
        // NULL, and before that try only checks that metadata is not NULL.
        // SAFETY: `meta` is a live gguf context; `raw`'s arrays and the progress closure are
        // borrowed as in `load`; `state` outlives the call, reached only through the
        // trampoline, which matches `llama_model_set_tensor_data_t`.
        let ptr = unsafe {
            sys::llama_model_init_from_user(
                meta.as_ptr(),
                Some(fill_trampoline),
                (&raw mut state).cast(),
                raw,
            )
        };
        RawModel::from_ptr(ptr)
    }

    /// Takes ownership of a model llama.cpp returned (NULL gives `None`).
    fn from_ptr(ptr: *mut sys::llama_model) -> Option<RawModel> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: a model llama.cpp just returned; the vocabulary is one of its members.
        let vocab = unsafe { sys::llama_model_get_vocab(ptr.as_ptr()) };
        let Some(vocab) = NonNull::new(vocab.cast_mut()) else {
            // Cannot happen (the address of a member); freed rather than kept without one.
            // SAFETY: the model is ours and nothing borrows it yet.
            unsafe { sys::llama_model_free(ptr.as_ptr()) };
            return None;
        };
        Some(RawModel { ptr, vocab })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    /// The model's vocabulary, borrowed for as long as the model is.
    pub(crate) fn vocab(&self) -> RawVocab<'_> {
        // SAFETY: the model's own vocabulary, which lives as long as `self` (the
        // returned value borrows it).
        unsafe { RawVocab::new(self.vocab) }
    }

    /// `llama_model_desc`.
    pub(crate) fn desc(&self) -> Option<String> {
        // SAFETY: a live model; the closure passes `buf` with its true length `len`.
        read_string(|buf, len| unsafe { sys::llama_model_desc(self.as_ptr(), buf, len) })
    }

    pub(crate) fn size(&self) -> u64 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_size(self.as_ptr()) }
    }

    pub(crate) fn n_params(&self) -> u64 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_params(self.as_ptr()) }
    }

    /// May be rewritten by creating a YaRN context: callers that can race with that take
    /// the model's adapter lock for reading.
    pub(crate) fn n_ctx_train(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_ctx_train(self.as_ptr()) }
    }

    /// The RoPE frequency scale the model was trained with.
    pub(crate) fn rope_freq_scale_train(&self) -> f32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_rope_freq_scale_train(self.as_ptr()) }
    }

    /// The number of MTP (NextN) layers the model's metadata declares (loaded or not).
    pub(crate) fn n_layer_nextn(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_layer_nextn(self.as_ptr()) }
    }

    pub(crate) fn n_embd(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_embd(self.as_ptr()) }
    }

    pub(crate) fn n_layer(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_layer(self.as_ptr()) }
    }

    pub(crate) fn n_head(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_head(self.as_ptr()) }
    }

    pub(crate) fn n_head_kv(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_n_head_kv(self.as_ptr()) }
    }

    pub(crate) fn rope_type(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_rope_type(self.as_ptr()) }
    }

    pub(crate) fn is_recurrent(&self) -> bool {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_is_recurrent(self.as_ptr()) }
    }

    pub(crate) fn is_hybrid(&self) -> bool {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_is_hybrid(self.as_ptr()) }
    }

    pub(crate) fn has_encoder(&self) -> bool {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_has_encoder(self.as_ptr()) }
    }

    /// The value of metadata `key` as a string.
    pub(crate) fn meta(&self, key: &CStr) -> Option<String> {
        // SAFETY: a live model, a NUL-terminated key; the closure passes `buf` with its
        // true length `len`.
        read_string(|buf, len| unsafe {
            sys::llama_model_meta_val_str(self.as_ptr(), key.as_ptr(), buf, len)
        })
    }

    pub(crate) fn meta_count(&self) -> i32 {
        // SAFETY: a live model; the getter only reads it.
        unsafe { sys::llama_model_meta_count(self.as_ptr()) }
    }

    /// The key and value of metadata entry `i` (`None` outside `0..meta_count`, which
    /// llama.cpp checks).
    pub(crate) fn meta_by_index(&self, i: i32) -> Option<(String, String)> {
        // SAFETY: a live model; llama.cpp checks `i`; the closures pass `b` with its true
        // length `l`.
        let k = read_string(|b, l| unsafe {
            sys::llama_model_meta_key_by_index(self.as_ptr(), i, b, l)
        })?;
        // SAFETY: as above.
        let v = read_string(|b, l| unsafe {
            sys::llama_model_meta_val_str_by_index(self.as_ptr(), i, b, l)
        })?;
        Some((k, v))
    }

    /// The chat template (the default one, or the one named `name`), if the model has it.
    pub(crate) fn chat_template(&self, name: Option<&CStr>) -> Option<String> {
        // SAFETY: a live model; name is NULL or NUL-terminated; returns NULL or a string
        // owned by the model.
        let p = unsafe {
            sys::llama_model_chat_template(
                self.as_ptr(),
                name.map_or(std::ptr::null(), CStr::as_ptr),
            )
        };
        // SAFETY: NULL or a NUL-terminated string the model owns, alive during the copy.
        (!p.is_null()).then(|| unsafe { cstr_lossy(p) })
    }
}

/// Calls a C "write into buf of len, return needed length" function (snprintf style),
/// growing the buffer once if needed. Returns `None` when the function reports an error.
/// `f` must write at most `len` bytes to the buffer it gets.
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
