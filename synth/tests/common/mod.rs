//! Raw llamacpp-sys helpers for the integration tests: load a model, read its
//! properties, tokenize, and decode greedily.

#![allow(dead_code)]

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;

use llamacpp_sys as sys;

static INIT: Once = Once::new();

unsafe extern "C" fn quiet_log(
    _level: sys::ggml_log_level,
    _text: *const c_char,
    _ud: *mut std::ffi::c_void,
) {
}

/// Initialise the backend once and silence llama.cpp's logging
/// (set `LLAMACPP_SYNTH_TEST_LOG=1` to keep it).
pub fn init() {
    INIT.call_once(|| {
        // SAFETY: called once, before any other llama call of this process' tests;
        // the callback is a plain function that ignores its arguments.
        unsafe {
            sys::llama_backend_init();
            if std::env::var_os("LLAMACPP_SYNTH_TEST_LOG").is_none() {
                sys::llama_log_set(Some(quiet_log), std::ptr::null_mut());
            }
        }
    });
}

/// A loaded model, freed on drop.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
}

// SAFETY: a llama_model is immutable after loading and may be used from any thread.
unsafe impl Send for Model {}

impl Model {
    /// Load `path` on the CPU, or return llama.cpp's refusal as `None`.
    pub fn load(path: &Path) -> Option<Self> {
        init();
        let c = CString::new(path.to_str()?).ok()?;
        // SAFETY: llama_model_default_params has no preconditions.
        let mut params = unsafe { sys::llama_model_default_params() };
        params.n_gpu_layers = 0;
        params.check_tensors = true;
        // SAFETY: c is a NUL-terminated path; params are defaults with CPU only.
        let ptr = unsafe { sys::llama_model_load_from_file(c.as_ptr(), params) };
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Take ownership of a model built elsewhere.
    pub fn from_raw(ptr: *mut sys::llama_model) -> Self {
        Self {
            ptr: NonNull::new(ptr).expect("non-null model"),
        }
    }

    fn raw(&self) -> *const sys::llama_model {
        self.ptr.as_ptr()
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: live model.
        unsafe { sys::llama_model_get_vocab(self.raw()) }
    }

    /// A metadata value as a string.
    pub fn meta(&self, key: &str) -> Option<String> {
        let k = CString::new(key).ok()?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: live model, NUL-terminated key, buf has buf.len() bytes.
        let n = unsafe {
            sys::llama_model_meta_val_str(
                self.raw(),
                k.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return None;
        }
        // SAFETY: on success llama.cpp wrote a NUL-terminated string into buf.
        Some(
            unsafe { CStr::from_ptr(buf.as_ptr().cast()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Number of layers.
    pub fn n_layer(&self) -> i32 {
        // SAFETY: live model.
        unsafe { sys::llama_model_n_layer(self.raw()) }
    }

    /// Embedding width.
    pub fn n_embd(&self) -> i32 {
        // SAFETY: live model.
        unsafe { sys::llama_model_n_embd(self.raw()) }
    }

    /// (query heads, key/value heads, training context, rope type) as llama.cpp read them.
    pub fn hparams(&self) -> (i32, i32, i32, i32) {
        // SAFETY: live model.
        unsafe {
            (
                sys::llama_model_n_head(self.raw()),
                sys::llama_model_n_head_kv(self.raw()),
                sys::llama_model_n_ctx_train(self.raw()),
                sys::llama_model_rope_type(self.raw()),
            )
        }
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> i32 {
        // SAFETY: live vocab of a live model.
        unsafe { sys::llama_vocab_n_tokens(self.vocab()) }
    }

    /// Number of parameters.
    pub fn n_params(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_n_params(self.raw()) }
    }

    /// Total tensor bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: live model.
        unsafe { sys::llama_model_size(self.raw()) }
    }

    /// The model's chat template, if any.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: live model; a null name asks for the default template.
        let p = unsafe { sys::llama_model_chat_template(self.raw(), std::ptr::null()) };
        // SAFETY: non-null results are NUL-terminated strings owned by the model.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    /// BOS / EOS / EOT ids.
    pub fn special_ids(&self) -> (i32, i32, i32) {
        let v = self.vocab();
        // SAFETY: live vocab.
        unsafe {
            (
                sys::llama_vocab_bos(v),
                sys::llama_vocab_eos(v),
                sys::llama_vocab_eot(v),
            )
        }
    }

    /// Tokenize `text`.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<i32> {
        let mut out = vec![0i32; text.len() + 8];
        // SAFETY: live vocab; text is text.len() bytes (no NUL needed); out has out.len() slots.
        let n = unsafe {
            sys::llama_tokenize(
                self.vocab(),
                text.as_ptr().cast(),
                text.len() as i32,
                out.as_mut_ptr(),
                out.len() as i32,
                add_special,
                parse_special,
            )
        };
        assert!(n >= 0, "llama_tokenize needs {} slots", -n);
        out.truncate(n as usize);
        out
    }

    /// The bytes of one token.
    pub fn piece(&self, token: i32, special: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        // SAFETY: live vocab; buf has buf.len() bytes.
        let n = unsafe {
            sys::llama_token_to_piece(
                self.vocab(),
                token,
                buf.as_mut_ptr().cast(),
                256,
                0,
                special,
            )
        };
        assert!(n >= 0, "piece of {token} longer than 256 bytes");
        buf.truncate(n as usize);
        buf
    }

    /// Concatenated pieces.
    pub fn detokenize(&self, tokens: &[i32], special: bool) -> String {
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| self.piece(t, special))
            .collect();
        String::from_utf8(bytes).expect("detokenized text is UTF-8")
    }

    /// Decode `prompt` then `steps` greedy tokens; asserts every logit is finite.
    pub fn greedy(&self, prompt: &[i32], steps: usize) -> Vec<i32> {
        // SAFETY: llama_context_default_params has no preconditions.
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = 256;
        cp.n_batch = 256;
        cp.n_ubatch = 256;
        cp.n_threads = 1; // tests run in parallel; spinning thread pools would contend
        cp.n_threads_batch = 1;
        // SAFETY: live model; CPU-only context parameters.
        let ctx = NonNull::new(unsafe { sys::llama_init_from_model(self.ptr.as_ptr(), cp) })
            .expect("llama_init_from_model failed");
        let n_vocab = self.n_vocab() as usize;
        let mut tokens: Vec<i32> = prompt.to_vec();
        let mut out = Vec::new();
        let mut next_batch: Vec<i32> = tokens.clone();
        for _ in 0..steps {
            // SAFETY: ctx is live; the batch views next_batch, alive for the call.
            let rc = unsafe {
                sys::llama_decode(
                    ctx.as_ptr(),
                    sys::llama_batch_get_one(next_batch.as_mut_ptr(), next_batch.len() as i32),
                )
            };
            assert_eq!(rc, 0, "llama_decode failed");
            // SAFETY: the last token of the batch has logits; n_vocab floats are readable.
            let logits = unsafe {
                std::slice::from_raw_parts(sys::llama_get_logits_ith(ctx.as_ptr(), -1), n_vocab)
            };
            assert!(logits.iter().all(|v| v.is_finite()), "non-finite logits");
            let best = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as i32)
                .expect("non-empty vocabulary");
            out.push(best);
            tokens.push(best);
            next_batch = vec![best];
        }
        // SAFETY: ctx came from llama_init_from_model and is freed once.
        unsafe { sys::llama_free(ctx.as_ptr()) };
        out
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the pointer came from llama_model_load_from_file and is freed once.
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) }
    }
}

/// Number of distinct values.
pub fn distinct(tokens: &[i32]) -> usize {
    let mut v = tokens.to_vec();
    v.sort_unstable();
    v.dedup();
    v.len()
}
