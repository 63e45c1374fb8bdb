//! Shared fixtures of the fuzz targets: the synthetic models they run on, the
//! scratch files they write, and what "use a model" means after a load.
//!
//! Every target checks one thing: whatever the input, the safe crate returns
//! `Ok` or `Err` and the process goes on. A crash, an abort, a leak (ASan) or a
//! timeout is a finding; the target itself asserts nothing about the values.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

use llamacpp::{Batch, Context, ContextParams, Model, ModelParams};
use llamacpp_synth::{MetaValue, ModelSpec, Preset, SynthOptions};

pub mod edits;

/// The tiny presets the targets draw from (every architecture synth writes).
pub const PRESETS: [Preset; 4] = [
    Preset::LlamaTiny,
    Preset::Qwen3NextTiny,
    Preset::Qwen3MoeTiny,
    Preset::Qwen35MoeTiny,
];

/// Turns llama.cpp's logging off once (it would drown the fuzzer's output).
pub fn quiet() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| llamacpp::backend::set_logging(false));
}

/// The spec synth writes for a tiny preset (metadata and tensors, no data).
pub fn spec(preset: Preset) -> ModelSpec {
    match ModelSpec::from_options(&SynthOptions::new(preset)) {
        Ok(s) => s,
        // A fixture, not input: the presets are fixed and tested in synth.
        Err(e) => panic!("synth spec for {preset}: {e}"),
    }
}

/// The dense tiny llama, loaded once per process and kept for the process's life.
pub fn dense() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        quiet();
        let path = llamacpp_synth::tiny_model_path(Preset::LlamaTiny);
        match Model::load(path, ModelParams::default()) {
            Ok(m) => m,
            Err(e) => panic!("the dense fixture does not load: {e}"),
        }
    })
}

/// One context over [`dense`] shared by the iterations of a target (two sequences,
/// a 256-token cache, one thread).
pub fn dense_context() -> MutexGuard<'static, Context<'static>> {
    static CTX: OnceLock<Mutex<Context<'static>>> = OnceLock::new();
    let m = CTX.get_or_init(|| {
        let params = ContextParams::default()
            .n_ctx(256)
            .n_batch(64)
            .n_ubatch(64)
            .n_seq_max(2)
            .n_threads(1);
        match Context::new(dense(), params) {
            Ok(c) => Mutex::new(c),
            Err(e) => panic!("the dense context fixture: {e}"),
        }
    });
    // A panic is a finding that ends the process, so a poisoned lock is never seen again.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A scratch file name unique to this process (fuzz jobs run in parallel).
pub fn scratch(name: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("llamacpp-fuzz-{}-{name}", std::process::id()))
}

/// Uses a model that loaded: the vocabulary on text with special tokens, every
/// token's piece and text, and (unless vocab-only) a two-token decode.
pub fn exercise(model: &Model, vocab_only: bool) {
    let vocab = model.vocab();
    for text in [
        "Hello world! <|im_start|>user\n",
        "\u{1F600} \t\n x\u{0}y ~~~~",
    ] {
        for (add, parse) in [(true, true), (false, false)] {
            if let Ok(tokens) = vocab.tokenize(text, add, parse) {
                let _ = vocab.detokenize(&tokens, false, true);
            }
        }
    }
    let n = vocab.n_tokens().clamp(0, 4096);
    for id in 0..n {
        if let Ok(t) = vocab.token(id) {
            let _ = vocab.piece_bytes(t, true);
            let _ = vocab.text(t);
        }
    }
    if vocab_only {
        return;
    }
    let params = ContextParams::default()
        .n_ctx(64)
        .n_batch(16)
        .n_ubatch(16)
        .n_threads(1);
    let Ok(mut ctx) = Context::new(model, params) else {
        return;
    };
    let ids: Vec<_> = (0..2).filter_map(|i| vocab.token(i).ok()).collect();
    if let Ok(mut batch) = Batch::from_tokens(&ids, 0, 0) {
        if ctx.decode(&mut batch).is_ok() {
            let _ = ctx.logits(-1);
        }
    }
}

/// Writes `spec` (metadata and random tensors) to this process's scratch file and
/// loads it; the file is removed again before returning.
pub fn write_and_load(spec: &ModelSpec, params: ModelParams) -> Option<Model> {
    let path = scratch("model.gguf");
    let written = llamacpp_synth::write_gguf(spec, &path, false).is_ok();
    let model = written.then(|| Model::load(&path, params).ok()).flatten();
    let _ = std::fs::remove_file(&path);
    model
}

/// Replaces key `key` of `spec`'s metadata (or adds it).
pub fn set(spec: &mut ModelSpec, key: &str, value: MetaValue) {
    spec.metadata.set(key, value);
}
