//! C++ exceptions thrown inside llama.cpp stop at the C boundary (the shim in
//! `llamacpp-sys/shim/boundary.cpp`) and come back as `Err`, instead of unwinding
//! into Rust (undefined behaviour; in practice `std::terminate` and an abort).
//!
//! Each model here loads fine: the throw only happens at first use.

mod common;

use std::path::Path;

use llamacpp::{Error, Model, ModelParams};
use llamacpp_synth::{MetaValue, ModelSpec, write_gguf};

/// `general.*`/`llama.*` metadata and tensors of the dense model, with the
/// tokenizer metadata replaced by `tokenizer` (the token count stays, so the
/// embedding tensors still match).
fn with_tokenizer(tokenizer: &[(&str, MetaValue)]) -> ModelSpec {
    let mut spec = common::dense_spec();
    let mut meta = llamacpp_synth::Metadata::default();
    for (k, v) in spec.metadata.entries() {
        if !k.starts_with("tokenizer.") {
            meta.set(k.clone(), v.clone());
        }
    }
    for (k, v) in tokenizer {
        meta.set(*k, v.clone());
    }
    spec.metadata = meta;
    spec
}

/// A SentencePiece-style token list of `n` entries: `specials`, then `words`,
/// then unique filler pieces made of letters no test text uses.
fn tokens(n: u32, specials: &[&str], words: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = specials
        .iter()
        .chain(words)
        .map(|s| s.to_string())
        .collect();
    let mut i = 0;
    while out.len() < n as usize {
        out.push(format!("\u{2581}tok{i}"));
        i += 1;
    }
    out
}

/// Token types: CONTROL (3) for the first `n_special`, NORMAL (1) for the rest.
fn types(n: usize, n_special: usize) -> Vec<i32> {
    (0..n).map(|i| if i < n_special { 3 } else { 1 }).collect()
}

fn load(path: &Path) -> Model {
    Model::load(path, ModelParams::default()).expect("the model loads; only tokenizing throws")
}

/// An SPM (`llama`) vocabulary without `<0xXX>` byte tokens or a single-character
/// fallback: a character outside the vocabulary makes `byte_to_token` call
/// `token_to_id.at(...)`, which throws `std::out_of_range` out of `llama_tokenize`.
#[test]
fn spm_vocab_without_byte_fallback_is_an_error() {
    let n = common::dense_spec().n_vocab;
    let toks = tokens(n, &["<unk>", "<s>", "</s>"], &["\u{2581}", "a", "b"]);
    let spec = with_tokenizer(&[
        ("tokenizer.ggml.model", MetaValue::Str("llama".into())),
        ("tokenizer.ggml.tokens", MetaValue::ArrStr(toks.clone())),
        (
            "tokenizer.ggml.scores",
            MetaValue::ArrF32(vec![0.0; toks.len()]),
        ),
        (
            "tokenizer.ggml.token_type",
            MetaValue::ArrI32(types(toks.len(), 3)),
        ),
        ("tokenizer.ggml.add_bos_token", MetaValue::Bool(false)),
        ("tokenizer.ggml.add_eos_token", MetaValue::Bool(false)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spm-no-bytes.gguf");
    write_gguf(&spec, &path, false).unwrap();
    let model = load(&path);
    let vocab = model.vocab();

    // Known characters still tokenize.
    assert!(!vocab.tokenize("ab", false, false).unwrap().is_empty());
    // An unknown one threw std::out_of_range inside llama.cpp.
    let err = vocab.tokenize("zz", false, false).unwrap_err();
    assert!(matches!(err, Error::Cpp { .. }), "{err:?}");
    // The vocabulary is still usable afterwards.
    assert!(!vocab.tokenize("ba", false, false).unwrap().is_empty());
}

/// Finds the GGUF key `key` (u64 length + bytes) in `bytes` and returns the offset
/// just after it (where the value's type follows).
fn after_key(bytes: &[u8], key: &str) -> usize {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("key in file");
    at + needle.len()
}

/// A UGM (`t5`) vocabulary whose `precompiled_charsmap` passes the load-time size
/// checks but whose XCDA root sends the first character to an entry past the end:
/// `xcda_array_view::get_node` throws `std::runtime_error` inside `llama_tokenize`.
#[test]
fn ugm_vocab_with_malformed_charsmap_is_an_error() {
    let n = common::dense_spec().n_vocab;
    let toks = tokens(n, &["<pad>", "</s>", "<unk>"], &["\u{2581}", "a", "b"]);
    // The charsmap must be a u8/i8 array, which synth does not write: it is written as
    // i32s and the array header retyped below (same bytes on disk). Layout: XCDA blob
    // size, 16 XCDA entries of 0, 4 bytes of replacement strings. Root BASE 0 sends a
    // character c to entry c: c < 16 (the "\n" llama.cpp tokenizes while loading) finds
    // no child and stops, 'a' (97) reads past the 16 entries and throws.
    let mut charsmap = vec![16 * 4];
    charsmap.extend([0; 17]);
    let n_bytes = 4 * charsmap.len() as u64;
    let key = "tokenizer.ggml.precompiled_charsmap";
    let spec = with_tokenizer(&[
        ("tokenizer.ggml.model", MetaValue::Str("t5".into())),
        ("tokenizer.ggml.tokens", MetaValue::ArrStr(toks.clone())),
        (
            "tokenizer.ggml.scores",
            MetaValue::ArrF32(vec![-1.0; toks.len()]),
        ),
        (
            "tokenizer.ggml.token_type",
            MetaValue::ArrI32(types(toks.len(), 3)),
        ),
        ("tokenizer.ggml.add_bos_token", MetaValue::Bool(false)),
        ("tokenizer.ggml.add_eos_token", MetaValue::Bool(false)),
        (key, MetaValue::ArrI32(charsmap)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ugm-bad-charsmap.gguf");
    write_gguf(&spec, &path, false).unwrap();

    // Value layout: u32 GGUF_TYPE_ARRAY (9), u32 element type, u64 count, data.
    let mut bytes = std::fs::read(&path).unwrap();
    let v = after_key(&bytes, key);
    assert_eq!(bytes[v..v + 4], 9u32.to_le_bytes());
    assert_eq!(bytes[v + 4..v + 8], 5u32.to_le_bytes()); // GGUF_TYPE_INT32
    bytes[v + 4..v + 8].copy_from_slice(&0u32.to_le_bytes()); // GGUF_TYPE_UINT8
    bytes[v + 8..v + 16].copy_from_slice(&n_bytes.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let model = load(&path);
    let err = model.vocab().tokenize("ab", false, false).unwrap_err();
    assert!(
        matches!(&err, Error::Cpp { message, .. } if message.contains("XCDA")),
        "{err:?}"
    );
}

/// Without a tokenizer (`no_vocab`) llama.cpp asserts (aborts) in `llama_tokenize`
/// (`GGML_ASSERT(tokenizer)`) and `llama_token_to_piece` (`token_get_attr`'s type
/// assert); the safe API answers `NoVocabulary` instead. Not an exception, but the same
/// entry points.
#[test]
fn tokenizing_without_a_tokenizer_is_an_error() {
    let mut opts = llamacpp_synth::SynthOptions::new(llamacpp_synth::Preset::LlamaTiny);
    opts.vocab = llamacpp_synth::Vocab::None { size: 512 };
    let path = llamacpp_synth::cached_model(&opts).unwrap();
    let model = load(&path);
    let vocab = model.vocab();
    assert!(matches!(
        vocab.tokenize("hello", false, false),
        Err(Error::NoVocabulary)
    ));
    let t = vocab.token(7).unwrap();
    assert!(matches!(vocab.piece(t, true), Err(Error::NoVocabulary)));
    assert!(matches!(
        vocab.piece_bytes(t, false),
        Err(Error::NoVocabulary)
    ));
    // Detokenizing is defined there (llama.cpp returns no text).
    assert_eq!(vocab.detokenize(&[t], false, false).unwrap(), "");
}

/// The wrapped entry points still do their ordinary work through the shim: decode,
/// tokenize/piece/detokenize, chat templates, penalty/DRY/grammar samplers and reset.
#[test]
fn wrapped_calls_work_as_before() {
    use llamacpp::chat::{ChatMessage, apply_template};
    use llamacpp::{Context, ContextParams, SamplerChain};

    let model = common::dense();
    let vocab = model.vocab();
    let toks = vocab.tokenize("hello world", false, false).unwrap();
    assert!(!toks.is_empty());
    assert_eq!(
        vocab.detokenize(&toks, false, false).unwrap(),
        "hello world"
    );
    assert!(!vocab.piece_bytes(toks[0], false).unwrap().is_empty());

    let text = apply_template("chatml", &[ChatMessage::new("user", "hi")], true).unwrap();
    assert!(text.ends_with("<|im_start|>assistant\n"));
    assert!(matches!(
        apply_template("no-such-template", &[ChatMessage::new("user", "hi")], true),
        Err(Error::ChatTemplate(_))
    ));

    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(64).n_threads(1)).unwrap();
    ctx.decode_tokens(&toks).unwrap();
    let mut chain = SamplerChain::builder(vocab)
        .penalties(16, 1.1, 0.0, 0.0)
        .dry(0.8, 1.75, 2, 16, &["\n"])
        .grammar("root ::= [a-z]+", "root")
        .greedy()
        .build()
        .unwrap();
    let t = chain.sample(&mut ctx, -1).unwrap();
    assert!(
        vocab
            .piece(t, false)
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_lowercase())
    );
    chain.reset();
    assert!(chain.sample(&mut ctx, -1).is_ok());
}
