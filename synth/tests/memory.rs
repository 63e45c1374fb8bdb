//! `load_in_memory` builds the same model as the file, without the file.
//!
//! This test stays on the raw C API: the safe `llamacpp::Model` cannot take over a model
//! built by `llama_model_init_from_user`. The other tests that load synth's models are
//! in `llamacpp/tests/synth_*.rs`, on the safe API.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;

use llamacpp_synth::{
    InMemoryModel, LinearLayout, ModelSpec, Preset, SynthOptions, cached_model, load_in_memory,
};
use llamacpp_sys as sys;

unsafe extern "C" fn quiet_log(
    _level: sys::ggml_log_level,
    _text: *const c_char,
    _ud: *mut std::ffi::c_void,
) {
}

/// Initialise the backend once and silence llama.cpp's logging
/// (set `LLAMACPP_SYNTH_TEST_LOG=1` to keep it).
fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: called once, before any other llama call of this test binary;
        // the callback is a plain function that ignores its arguments.
        unsafe {
            sys::llama_backend_init();
            if std::env::var_os("LLAMACPP_SYNTH_TEST_LOG").is_none() {
                sys::llama_log_set(Some(quiet_log), std::ptr::null_mut());
            }
        }
    });
}

/// A model loaded from a file or built in memory.
enum Model {
    File(NonNull<sys::llama_model>),
    Memory(InMemoryModel),
}

impl Model {
    /// Load `path` on the CPU with tensor checks.
    fn load(path: &Path) -> Self {
        init();
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: llama_model_default_params has no preconditions.
        let mut params = unsafe { sys::llama_model_default_params() };
        params.n_gpu_layers = 0;
        params.check_tensors = true;
        // SAFETY: c is a NUL-terminated path; params are defaults with CPU only.
        let ptr = unsafe { sys::llama_model_load_from_file(c.as_ptr(), params) };
        Self::File(NonNull::new(ptr).expect("llama.cpp loads the file"))
    }

    fn raw(&self) -> *mut sys::llama_model {
        match self {
            Self::File(p) => p.as_ptr(),
            Self::Memory(m) => m.as_ptr(),
        }
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: live model.
        unsafe { sys::llama_model_get_vocab(self.raw()) }
    }

    /// A metadata value as a string.
    fn meta(&self, key: &str) -> Option<String> {
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

    /// (layers, embedding width, vocabulary size).
    fn shape(&self) -> (i32, i32, i32) {
        // SAFETY: live model and its vocab.
        unsafe {
            (
                sys::llama_model_n_layer(self.raw()),
                sys::llama_model_n_embd(self.raw()),
                sys::llama_vocab_n_tokens(self.vocab()),
            )
        }
    }

    /// (query heads, key/value heads, training context, rope type) as llama.cpp read them.
    fn hparams(&self) -> (i32, i32, i32, i32) {
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

    /// Tokenize `text` (BOS as the model wants, no special-token parsing).
    fn tokenize(&self, text: &str) -> Vec<i32> {
        let mut out = vec![0i32; text.len() + 8];
        // SAFETY: live vocab; text is text.len() bytes (no NUL needed); out has out.len() slots.
        let n = unsafe {
            sys::llama_tokenize(
                self.vocab(),
                text.as_ptr().cast(),
                text.len() as i32,
                out.as_mut_ptr(),
                out.len() as i32,
                true,
                false,
            )
        };
        assert!(n >= 0, "llama_tokenize needs {} slots", -n);
        out.truncate(n as usize);
        out
    }

    /// Decode `prompt` then `steps` greedy tokens; asserts every logit is finite.
    fn greedy(&self, prompt: &[i32], steps: usize) -> Vec<i32> {
        // SAFETY: llama_context_default_params has no preconditions.
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = 256;
        cp.n_batch = 256;
        cp.n_ubatch = 256;
        cp.n_threads = 1; // tests run in parallel; spinning thread pools would contend
        cp.n_threads_batch = 1;
        // SAFETY: live model; CPU-only context parameters.
        let ctx = NonNull::new(unsafe { sys::llama_init_from_model(self.raw(), cp) })
            .expect("llama_init_from_model failed");
        let n_vocab = self.shape().2 as usize;
        let mut out = Vec::new();
        let mut next_batch: Vec<i32> = prompt.to_vec();
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
            next_batch = vec![best];
        }
        // SAFETY: ctx came from llama_init_from_model and is freed once.
        unsafe { sys::llama_free(ctx.as_ptr()) };
        out
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        if let Self::File(p) = self {
            // SAFETY: the pointer came from llama_model_load_from_file and is freed once.
            unsafe { sys::llama_model_free(p.as_ptr()) }
        }
    }
}

fn in_memory(opts: &SynthOptions) -> llamacpp_synth::Result<Model> {
    init();
    let spec = ModelSpec::from_options(opts)?;
    // SAFETY: llama_model_default_params has no preconditions.
    let mut params = unsafe { sys::llama_model_default_params() };
    params.n_gpu_layers = 0;
    Ok(Model::Memory(load_in_memory(&spec, params)?))
}

#[test]
fn memory_models_decode_like_their_files() {
    for preset in Preset::TINY {
        // in memory, llama.cpp creates fused expert tensors for the hybrid archs
        let mut opts = SynthOptions::new(preset);
        opts.fused_experts = matches!(preset.arch(), "qwen3next" | "qwen35moe");
        let file = Model::load(&cached_model(&opts).unwrap());
        let mem = in_memory(&opts).unwrap();
        assert_eq!(
            mem.meta("general.architecture"),
            file.meta("general.architecture")
        );
        assert_eq!(mem.shape(), file.shape());
        assert_eq!(mem.hparams(), file.hparams());
        let prompt = file.tokenize("It is important to test the things you build.");
        let (a, b) = (mem.greedy(&prompt, 8), file.greedy(&prompt, 8));
        assert_eq!(a, b, "{preset}");
    }
}

#[test]
fn file_only_layouts_are_refused() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.layout = LinearLayout::Legacy;
    assert!(in_memory(&o).is_err());
    o.fused_experts = true;
    assert!(in_memory(&o).is_err());
    // separate experts: llama.cpp would create (and use) a fused tensor instead
    assert!(in_memory(&SynthOptions::new(Preset::Qwen35MoeTiny)).is_err());
}
