//! Model files that parse as GGUF but are semantically malformed (and metadata overrides
//! that make them so): llama.cpp would abort on them at load or first use; here
//! `Model::load` returns an `Err` that names the key and its value.

mod common;

use std::path::{Path, PathBuf};

use llamacpp::{Batch, Context, ContextParams, Error, KvOverride, Model, ModelParams};
use llamacpp_synth::{MetaValue, ModelSpec, write_gguf};

/// Writes `spec` as `name` into `dir`.
fn write(dir: &Path, name: &str, spec: &ModelSpec) -> PathBuf {
    let path = dir.join(name);
    write_gguf(spec, &path, false).expect("write model");
    path
}

/// `spec` with `key` set to `value`.
fn with(mut spec: ModelSpec, key: &str, value: MetaValue) -> ModelSpec {
    spec.metadata.set(key, value);
    spec
}

/// Replaces every occurrence of `from` in the file with `to` (same length), so strings
/// can hold bytes gguf's C setters cannot write (NUL).
fn patch_bytes(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "pattern not found");
    std::fs::write(path, bytes).unwrap();
}

/// Loads, and when that succeeds uses the model the way an application would first:
/// tokenize with special tokens, create a context, decode. Nothing here may abort.
fn load_and_use(path: &Path, params: ModelParams) -> Result<(), Error> {
    let model = Model::load(path, params)?;
    let vocab = model.vocab();
    let tokens = vocab.tokenize("Hello world\nand more", true, false)?;
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(64)
            .n_batch(64)
            .n_ubatch(64)
            .n_threads(1),
    )?;
    let tokens = if tokens.is_empty() {
        vec![vocab.token(0)?]
    } else {
        tokens
    };
    let mut batch = Batch::from_tokens(&tokens, 0, 0)?;
    ctx.decode(&mut batch)?;
    Ok(())
}

/// Asserts that loading fails with a reason that names every one of `words`.
fn assert_refused(path: &Path, params: ModelParams, words: &[&str]) {
    match load_and_use(path, params) {
        Err(Error::ModelLoad { reason, .. }) => {
            for w in words {
                assert!(reason.contains(w), "{reason:?} does not name {w:?}");
            }
        }
        other => panic!("expected a load error naming {words:?}, got {other:?}"),
    }
}

fn int(key: &str, v: i64) -> ModelParams {
    ModelParams::default()
        .kv_override(key, KvOverride::Int(v))
        .unwrap()
}

fn float(key: &str, v: f64) -> ModelParams {
    ModelParams::default()
        .kv_override(key, KvOverride::Float(v))
        .unwrap()
}

fn string(key: &str, v: &str) -> ModelParams {
    ModelParams::default()
        .kv_override(key, KvOverride::Str(v.into()))
        .unwrap()
}

// ---- 1. rotary dimensions -------------------------------------------------------------

#[test]
fn rope_dimensions_that_ggml_rope_rejects_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = "qwen3next.rope.dimension_count";
    // qwen3next rotates 16 of its 64 head dimensions; ggml's rope asserts the count is even
    // and at most the head size (it aborted at the first decode), and spins forever on 0.
    for (v, name) in [(17, "odd"), (128, "wide"), (0, "zero")] {
        let path = write(
            dir.path(),
            &format!("rope-{name}.gguf"),
            &with(common::qwen3next_spec(), key, MetaValue::U32(v)),
        );
        assert_refused(&path, ModelParams::default(), &[key, &v.to_string()]);
    }
    assert_refused(&common::qwen3next_path(), int(key, 65), &[key, "65"]);
    // A larger key_length keeps a larger count legal, as llama.cpp's loader reads it.
    let ok = with(common::qwen3next_spec(), key, MetaValue::U32(64));
    load_and_use(
        &write(dir.path(), "rope-full.gguf", &ok),
        ModelParams::default(),
    )
    .unwrap();
    // llama (also deci, falcon) already insists on the full head size: a clean error.
    let path = write(
        dir.path(),
        "rope-llama.gguf",
        &with(
            common::dense_spec(),
            "llama.rope.dimension_count",
            MetaValue::U32(31),
        ),
    );
    assert!(matches!(
        load_and_use(&path, ModelParams::default()),
        Err(Error::ModelLoad { .. })
    ));
}

// ---- 2. rope scaling type ------------------------------------------------------------------

#[test]
fn unknown_rope_scaling_type_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = "llama.rope.scaling.type";
    let path = write(
        dir.path(),
        "scaling.gguf",
        &with(common::dense_spec(), key, MetaValue::Str("bogus".into())),
    );
    assert_refused(&path, ModelParams::default(), &[key, "bogus"]);
    let key = "qwen3next.rope.scaling.type";
    assert_refused(
        &common::qwen3next_path(),
        string(key, "Yarn"),
        &[key, "Yarn"],
    );
    // Known names load.
    load_and_use(
        &common::dense_path(),
        string("llama.rope.scaling.type", "yarn"),
    )
    .unwrap();
}

// ---- 3. duplicate token strings ----------------------------------------------------------

fn tokens_of(spec: &ModelSpec) -> Vec<String> {
    match spec.metadata.get("tokenizer.ggml.tokens") {
        Some(MetaValue::ArrStr(t)) => t.clone(),
        other => panic!("no token list: {other:?}"),
    }
}

#[test]
fn duplicate_token_strings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::dense_spec();
    let mut tokens = tokens_of(&spec);
    tokens[301] = tokens[300].clone();
    let dup = tokens[300].clone();
    let path = write(
        dir.path(),
        "dup.gguf",
        &with(
            spec.clone(),
            "tokenizer.ggml.tokens",
            MetaValue::ArrStr(tokens),
        ),
    );
    assert_refused(
        &path,
        ModelParams::default(),
        &["tokenizer.ggml.tokens", "300", "301", &dup],
    );

    // Two different strings that llama.cpp reads as equal: it stops at an embedded NUL.
    let mut tokens = tokens_of(&spec);
    tokens[300] = "zq\u{1}x".into();
    tokens[301] = "zq\u{1}y".into();
    let path = write(
        dir.path(),
        "nul.gguf",
        &with(spec, "tokenizer.ggml.tokens", MetaValue::ArrStr(tokens)),
    );
    patch_bytes(&path, b"zq\x01", b"zq\x00");
    assert_refused(
        &path,
        ModelParams::default(),
        &["tokenizer.ggml.tokens", "300", "301"],
    );
}

// ---- 4. WPM vocabulary with byte tokens --------------------------------------------------

#[test]
fn bert_vocab_with_byte_tokens_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = with(
        common::dense_spec(),
        "tokenizer.ggml.model",
        MetaValue::Str("bert".into()),
    );
    let types = match spec.metadata.get("tokenizer.ggml.token_type") {
        Some(MetaValue::ArrI32(t)) => t.clone(),
        other => panic!("no token types: {other:?}"),
    };
    let mut bytes = types.clone();
    bytes[300] = 6;
    let path = write(
        dir.path(),
        "wpm-byte.gguf",
        &with(
            spec.clone(),
            "tokenizer.ggml.token_type",
            MetaValue::ArrI32(bytes),
        ),
    );
    assert_refused(
        &path,
        ModelParams::default(),
        &["tokenizer.ggml.token_type", "300", "bert"],
    );
    // The same vocabulary type switched by an override.
    let mut bytes = types;
    bytes[300] = 6;
    let path = write(
        dir.path(),
        "gpt2-byte.gguf",
        &with(
            common::dense_spec(),
            "tokenizer.ggml.token_type",
            MetaValue::ArrI32(bytes),
        ),
    );
    assert_refused(
        &path,
        string("tokenizer.ggml.model", "bert"),
        &["tokenizer.ggml.token_type"],
    );
}

// ---- 5. RWKV vocabulary without a newline --------------------------------------------------

/// llama.cpp asserts that an RWKV vocabulary tokenizes "\n" to something, but its RWKV
/// tokenizer emits the (absent, -1) unknown token for any unmatched byte, so the assertion
/// cannot fail; the -1 ids it then produces are rejected by the crate at first use.
#[test]
fn rwkv_vocab_without_newline_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "rwkv.gguf",
        &with(
            common::dense_spec(),
            "tokenizer.ggml.model",
            MetaValue::Str("rwkv".into()),
        ),
    );
    let r = load_and_use(&path, ModelParams::default());
    assert!(
        matches!(r, Ok(()) | Err(Error::InvalidToken { .. })),
        "{r:?}"
    );
}

/// A token that begins with a byte that is not a token itself (here a UTF-8 continuation
/// byte, as the `gguf_bytes` fuzz target found): llama.cpp's RWKV tokenizer found no match at
/// that byte and restarted at the start of the text, appending tokens until the process ran
/// out of memory. Patch 0034 makes the byte unknown, which the crate then refuses.
#[test]
fn rwkv_vocab_with_a_token_on_a_byte_that_is_not_one_does_not_loop() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = with(
        common::dense_spec(),
        "tokenizer.ggml.model",
        MetaValue::Str("rwkv".into()),
    );
    let Some(MetaValue::ArrStr(tokens)) = spec.metadata.get("tokenizer.ggml.tokens").cloned()
    else {
        panic!("the dense spec has a token list");
    };
    let mut tokens = tokens;
    // bytes 9f b2 in the RWKV vocabulary's escaped form; no token is the byte 9f alone
    tokens[300] = "\\x9f\\xb2".into();
    spec.metadata
        .set("tokenizer.ggml.tokens", MetaValue::ArrStr(tokens));
    let path = write(dir.path(), "rwkv-prefix.gguf", &spec);
    let model = Model::load(&path, ModelParams::default().vocab_only(true)).unwrap();
    // the emoji's bytes are f0 9f 98 80: 9f begins the token above, 98 does not follow it
    for text in ["\u{1F600}", "a\u{1F600}b"] {
        match model.vocab().tokenize(text, false, false) {
            Ok(t) => assert!(t.len() <= text.len(), "{text:?}: {} tokens", t.len()),
            Err(e) => assert!(matches!(e, Error::InvalidToken { .. }), "{text:?}: {e:?}"),
        }
    }
}

// ---- 6. add_bos / add_eos without the token ------------------------------------------------

#[test]
fn adding_a_missing_bos_or_eos_token_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A T5 (UGM) vocabulary has no default BOS; an out-of-range bos_token_id falls back to
    // that default, so add_bos_token = true cannot be honoured (llama_tokenize aborted).
    let mut spec = with(
        common::dense_spec(),
        "tokenizer.ggml.model",
        MetaValue::Str("t5".into()),
    );
    spec.metadata
        .set("tokenizer.ggml.bos_token_id", MetaValue::U32(99_999));
    let path = write(dir.path(), "t5-bos.gguf", &spec);
    assert_refused(
        &path,
        ModelParams::default(),
        &["tokenizer.ggml.add_bos_token", "BOS"],
    );
    // EOS the same way: gemma4's BPE vocabulary has no default EOS either.
    let params = string("tokenizer.ggml.model", "gemma4")
        .kv_override("tokenizer.ggml.eos_token_id", KvOverride::Int(99_999))
        .unwrap()
        .kv_override("tokenizer.ggml.add_eos_token", KvOverride::Bool(true))
        .unwrap();
    assert_refused(&common::dense_path(), params, &["add_eos_token", "EOS"]);
    // The same through overrides of a good file.
    let params = string("tokenizer.ggml.model", "t5")
        .kv_override("tokenizer.ggml.bos_token_id", KvOverride::Int(99_999))
        .unwrap();
    assert_refused(&common::dense_path(), params, &["add_bos_token"]);
    // With the flag off, the same vocabulary loads and tokenizes.
    let params = string("tokenizer.ggml.model", "t5")
        .kv_override("tokenizer.ggml.bos_token_id", KvOverride::Int(99_999))
        .unwrap()
        .kv_override("tokenizer.ggml.add_bos_token", KvOverride::Bool(false))
        .unwrap();
    load_and_use(&common::dense_path(), params).unwrap();
}

// ---- 7. split files --------------------------------------------------------------------------

/// Copies the model `src` (metadata and tensors) to `dst` with uint16 `split.*` keys;
/// with `no_as_u32`, `split.no` is written as a uint32 instead (the malformed case).
fn write_split(src: &Path, dst: &Path, no: u16, count: u16, no_as_u32: bool) {
    use llamacpp_sys as sys;
    use std::ffi::CString;
    let c_src = CString::new(src.to_str().unwrap()).unwrap();
    let c_dst = CString::new(dst.to_str().unwrap()).unwrap();
    let mut data: *mut sys::ggml_context = std::ptr::null_mut();
    let params = sys::gguf_init_params {
        no_alloc: false,
        ctx: &mut data,
    };
    let k_no = CString::new("split.no").unwrap();
    let k_count = CString::new("split.count").unwrap();
    // SAFETY: NUL-terminated paths and keys; the tensors come from `data`, which holds
    // their values and outlives the write; every context is freed once.
    unsafe {
        let read = sys::gguf_init_from_file(c_src.as_ptr(), params);
        assert!(!read.is_null());
        let out = sys::gguf_init_empty();
        sys::gguf_set_kv(out, read);
        sys::gguf_set_val_u16(out, k_count.as_ptr(), count);
        if no_as_u32 {
            sys::gguf_set_val_u32(out, k_no.as_ptr(), u32::from(no));
        } else {
            sys::gguf_set_val_u16(out, k_no.as_ptr(), no);
        }
        let mut t = sys::ggml_get_first_tensor(data);
        while !t.is_null() {
            sys::gguf_add_tensor(out, t);
            t = sys::ggml_get_next_tensor(data, t);
        }
        assert!(sys::gguf_write_to_file(out, c_dst.as_ptr(), false));
        sys::gguf_free(out);
        sys::gguf_free(read);
        sys::ggml_free(data);
    }
}

#[test]
fn split_file_with_mistyped_split_no_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // One small tensor keeps the files small; the other split is opened before any check
    // of the tensors.
    let mut spec = common::dense_spec();
    spec.tensors.retain(|t| t.name == "output_norm.weight");
    let base = write(dir.path(), "base.gguf", &spec);
    let first = dir.path().join("m-00001-of-00002.gguf");
    let second = dir.path().join("m-00002-of-00002.gguf");
    write_split(&base, &first, 0, 2, false);
    write_split(&base, &second, 1, 2, true);
    assert_refused(
        &first,
        ModelParams::default(),
        &["split.no", "m-00002-of-00002.gguf"],
    );
    // With the right type, llama.cpp's own checks apply (here: a tensor in both files).
    write_split(&base, &second, 1, 2, false);
    assert!(matches!(
        load_and_use(&first, ModelParams::default()),
        Err(Error::ModelLoad { .. })
    ));
    // The right type with the wrong number: llama.cpp refuses it, and (patch 0031) frees
    // the file's ggml context, which it leaked (LeakSanitizer in .ci/sanitize).
    write_split(&base, &second, 5, 2, false);
    match load_and_use(&first, ModelParams::default()) {
        Err(Error::ModelLoad { reason, .. }) => assert!(reason.contains("split"), "{reason}"),
        other => panic!("expected a load error, got {other:?}"),
    }
}

// ---- 8. values and overrides model_check did not cover ------------------------------------

#[test]
fn negative_or_nan_norm_epsilon_is_an_error() {
    for (path, arch) in [
        (common::dense_path(), "llama"),
        (common::qwen3next_path(), "qwen3next"),
    ] {
        let key = format!("{arch}.attention.layer_norm_rms_epsilon");
        for v in [f64::NAN, -1.0] {
            assert_refused(&path, float(&key, v), &[&key, &format!("{}", v as f32)]);
        }
        // 0 and +inf compute (to zeros or NaN logits), they do not abort.
        load_and_use(&path, float(&key, 0.0)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let key = "llama.attention.layer_norm_rms_epsilon";
    let path = write(
        dir.path(),
        "eps.gguf",
        &with(common::dense_spec(), key, MetaValue::F32(-1e-5)),
    );
    assert_refused(&path, ModelParams::default(), &[key]);
}

#[test]
fn inconsistent_linear_attention_sizes_are_errors() {
    let key = "qwen3next.ssm.inner_size";
    assert_refused(&common::qwen3next_path(), int(key, 0), &[key, "= 0"]);
    assert_refused(&common::qwen3next_path(), int(key, 512), &[key, "512"]);
}

#[test]
fn other_override_values_fail_cleanly_or_work() {
    // Each of these was tried on both models: a clean error (tensor shape checks, llama's
    // n_rot check) or a working model, never an abort.
    let cases: &[(&str, i64)] = &[
        ("attention.head_count", 0),
        ("attention.head_count", 3),
        ("attention.head_count_kv", 0),
        ("attention.key_length", 0),
        ("attention.value_length", 0),
        ("embedding_length", 0),
        ("embedding_length", 255),
        ("context_length", 0),
        ("context_length", u32::MAX as i64),
        ("feed_forward_length", 0),
    ];
    for (path, arch) in [
        (common::dense_path(), "llama"),
        (common::qwen3next_path(), "qwen3next"),
    ] {
        for &(suffix, v) in cases {
            let r = load_and_use(&path, int(&format!("{arch}.{suffix}"), v));
            assert!(
                matches!(r, Ok(()) | Err(Error::ModelLoad { .. })),
                "{arch}.{suffix} = {v}: {r:?}"
            );
        }
        // Frequencies that make every rotary angle NaN are refused (they computed NaN
        // logits, which a build with assertions aborts on); a scaling factor of 0 means none.
        for suffix in ["rope.freq_base", "rope.scaling.factor"] {
            for v in [f64::NAN, f64::INFINITY, -1.0, 0.0] {
                let key = format!("{arch}.{suffix}");
                let r = load_and_use(&path, float(&key, v));
                if suffix == "rope.scaling.factor" && v == 0.0 {
                    r.unwrap();
                } else {
                    match r {
                        Err(Error::ModelLoad { reason, .. }) => assert!(reason.contains(&key)),
                        other => panic!("{key} = {v}: {other:?}"),
                    }
                }
            }
        }
    }
}

// ---- 9. LoRA adapters with mistyped keys ------------------------------------------------------

#[test]
fn adapters_with_mistyped_keys_are_errors() {
    use llamacpp::LoraAdapter;
    use llamacpp_synth::{LoraOptions, lora_spec};
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("general.type", MetaValue::U32(1)),
        ("general.architecture", MetaValue::F32(1.0)),
        ("adapter.type", MetaValue::Bool(true)),
        ("adapter.lora.alpha", MetaValue::Str("4".into())),
    ] {
        let mut spec = lora_spec(&common::dense_spec(), &LoraOptions::new()).unwrap();
        spec.metadata.set(key, value);
        let path = write(dir.path(), "lora.gguf", &spec);
        match LoraAdapter::load(&model, &path) {
            Err(Error::AdapterLoad { reason, .. }) => assert!(reason.contains(key), "{reason}"),
            other => panic!("{key}: {other:?}"),
        }
    }
}

// ---- 10. experts and zero-sized tensors ----------------------------------------------------

#[test]
fn expert_tensors_without_experts_fail_cleanly() {
    let params = int("qwen3next.expert_count", 0)
        .kv_override("qwen3next.expert_used_count", KvOverride::Int(0))
        .unwrap();
    assert!(matches!(
        load_and_use(&common::qwen3next_path(), params),
        Err(Error::ModelLoad { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut spec = common::qwen3next_spec();
    spec.metadata
        .set("qwen3next.expert_count", MetaValue::U32(0));
    spec.metadata
        .set("qwen3next.expert_used_count", MetaValue::U32(0));
    let path = write(dir.path(), "no-experts.gguf", &spec);
    assert!(matches!(
        load_and_use(&path, ModelParams::default()),
        Err(Error::ModelLoad { .. })
    ));
}

/// A tiny mamba2 model (synth has no preset for it) with `n_group` SSM groups and the
/// BPE vocabulary of the dense model; `dt_rank` heads (0 makes zero-sized tensors).
fn mamba2_spec(n_group: u32, dt_rank: u32) -> ModelSpec {
    use llamacpp_synth::{Init, TensorSpec, TensorType};
    let (n_embd, d_inner, d_state, d_conv) = (64u64, 128u64, 16u64, 4u64);
    let dense = common::dense_spec();
    let mut spec = ModelSpec {
        arch: "mamba2".into(),
        n_layer: 1,
        n_embd,
        tensors: Vec::new(),
        ..dense.clone()
    };
    let mut meta = llamacpp_synth::Metadata::default();
    for (k, v) in dense.metadata.entries() {
        if !k.starts_with("llama.") {
            meta.set(k.clone(), v.clone());
        }
    }
    meta.set("general.architecture", MetaValue::Str("mamba2".into()));
    for (k, v) in [
        ("context_length", 4096),
        ("embedding_length", n_embd as u32),
        ("block_count", 1),
        ("ssm.conv_kernel", d_conv as u32),
        ("ssm.inner_size", d_inner as u32),
        ("ssm.state_size", d_state as u32),
        ("ssm.time_step_rank", dt_rank),
        ("ssm.group_count", n_group),
    ] {
        meta.set(format!("mamba2.{k}"), MetaValue::U32(v));
    }
    meta.set(
        "mamba2.attention.layer_norm_rms_epsilon",
        MetaValue::F32(1e-5),
    );
    spec.metadata = meta;
    let g = u64::from(n_group);
    let rank = u64::from(dt_rank);
    let conv_dim = d_inner + 2 * g * d_state;
    let n_vocab = u64::from(spec.n_vocab);
    let t = |name: &str, shape: &[u64], init: Init| TensorSpec {
        name: name.into(),
        shape: shape.to_vec(),
        ty: TensorType::F32,
        init,
    };
    let w = |n: u64| Init::fan_in(n);
    let one = Init::NearOne { noise: 0.02 };
    spec.tensors = vec![
        t(
            "token_embd.weight",
            &[n_embd, n_vocab],
            Init::Normal { std: 1.0 },
        ),
        t("output_norm.weight", &[n_embd], one),
        t("output.weight", &[n_embd, n_vocab], w(n_embd)),
        t("blk.0.attn_norm.weight", &[n_embd], one),
        t(
            "blk.0.ssm_in.weight",
            &[n_embd, d_inner + conv_dim + rank],
            w(n_embd),
        ),
        t("blk.0.ssm_conv1d.weight", &[d_conv, conv_dim], w(d_conv)),
        t("blk.0.ssm_conv1d.bias", &[conv_dim], w(d_conv)),
        t(
            "blk.0.ssm_dt.bias",
            &[rank],
            Init::Uniform { lo: -4.0, hi: -2.0 },
        ),
        t(
            "blk.0.ssm_a",
            &[1, rank],
            Init::Uniform { lo: -2.0, hi: -0.5 },
        ),
        t("blk.0.ssm_d", &[1, rank], one),
        t(
            "blk.0.ssm_norm.weight",
            &[d_inner / g.max(1), g.max(1)],
            one,
        ),
        t("blk.0.ssm_out.weight", &[d_inner, n_embd], w(d_inner)),
    ];
    spec
}

#[test]
fn zero_ssm_groups_or_heads_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // The well-formed model loads and runs.
    let good = write(dir.path(), "mamba2.gguf", &mamba2_spec(1, 4));
    load_and_use(&good, ModelParams::default()).unwrap();
    // llama.cpp divides the inner size by the group count while creating the tensors.
    let key = "mamba2.ssm.group_count";
    assert!(matches!(
        load_and_use(&good, int(key, 0)),
        Err(Error::ModelLoad { .. })
    ));
    let path = write(dir.path(), "mamba2-g0.gguf", &mamba2_spec(0, 4));
    assert_refused(&path, ModelParams::default(), &[key, "0"]);
    // Zero heads would divide by zero in the SSM_SCAN support probe (through `ssm_a`'s
    // zero-sized second dimension); such a file needs zero-sized tensors, which synth cannot
    // write, so the key itself is refused, file or override.
    let key = "mamba2.ssm.time_step_rank";
    assert_refused(&good, int(key, 0), &[key, "0"]);
}

// ---- the checks refuse nothing that works -----------------------------------------------------

#[test]
fn well_formed_models_still_load_and_run() {
    use llamacpp_synth::{Preset, SynthOptions, tiny_model_path};
    for preset in [
        Preset::LlamaTiny,
        Preset::Qwen3NextTiny,
        Preset::Qwen3MoeTiny,
        Preset::Qwen35MoeTiny,
    ] {
        load_and_use(&tiny_model_path(preset), ModelParams::default())
            .unwrap_or_else(|e| panic!("{preset}: {e}"));
    }
    // Without a tokenizer (no token list to check, no special tokens to add).
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SynthOptions::new(Preset::LlamaTiny);
    opts.vocab = llamacpp_synth::Vocab::None { size: 1024 };
    let spec = ModelSpec::from_options(&opts).unwrap();
    Model::load(
        write(dir.path(), "no-vocab.gguf", &spec),
        ModelParams::default(),
    )
    .unwrap();
    // Known rope scaling types, sane epsilons and a partial rotary count load.
    let params = string("qwen3next.rope.scaling.type", "yarn")
        .kv_override("qwen3next.rope.dimension_count", KvOverride::Int(32))
        .unwrap()
        .kv_override(
            "qwen3next.attention.layer_norm_rms_epsilon",
            KvOverride::Float(1e-5),
        )
        .unwrap();
    load_and_use(&common::qwen3next_path(), params).unwrap();
}

// ---- found by fuzzing (fuzz/, target gguf_metadata) --------------------------------------

/// A `general.architecture` of another type than string: llama.cpp's loader throws after
/// creating its ggml context and leaks it (LeakSanitizer in `.ci/sanitize` and the fuzzer
/// report it); refused before llama.cpp reads the file.
#[test]
fn mistyped_architecture_is_refused_before_llama_cpp_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    for value in [MetaValue::U32(0), MetaValue::ArrStr(vec!["llama".into()])] {
        let spec = with(common::dense_spec(), "general.architecture", value);
        let path = write(dir.path(), "arch.gguf", &spec);
        assert_refused(
            &path,
            ModelParams::default(),
            &["general.architecture", "not a string"],
        );
    }
}

#[test]
fn positions_past_a_learned_position_table_are_errors() {
    // GPT-2 looks each position up in a table of `context_length` rows; ggml's get_rows
    // asserted (aborted) on a position past it. A context may still be longer than the
    // table, as llama.cpp allows.
    let path = llamacpp_synth::tiny_model_path(llamacpp_synth::Preset::Gpt2Tiny);
    let model = Model::load(&path, ModelParams::default()).unwrap();
    let rows = model.n_ctx_train();
    assert_eq!(rows, 256);
    let vocab = model.vocab();
    let t = vocab.token(10).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(512)
            .n_batch(512)
            .n_ubatch(512)
            .n_threads(1),
    )
    .unwrap();
    // The last row is usable, the next one is not.
    let ok = vec![t; rows as usize];
    ctx.decode(&mut Batch::from_tokens(&ok, 0, 0).unwrap())
        .unwrap();
    assert!(ctx.logits(-1).unwrap().iter().all(|v| v.is_finite()));
    let past = ctx.decode(&mut Batch::from_tokens(&[t], rows, 0).unwrap());
    assert!(
        matches!(
            past,
            Err(Error::OutOfRange {
                what: "position",
                ..
            })
        ),
        "{past:?}"
    );
    // The same through decode_tokens, whose positions continue the sequence.
    assert!(matches!(
        ctx.decode_tokens(&[t]),
        Err(Error::OutOfRange {
            what: "position",
            ..
        })
    ));
    ctx.clear_memory(true);
    assert!(matches!(
        ctx.decode_tokens(&vec![t; rows as usize + 1]),
        Err(Error::OutOfRange {
            what: "position",
            ..
        })
    ));
    ctx.decode_tokens(&vec![t; rows as usize]).unwrap();
    // A YaRN context rewrites the model's n_ctx_train; the table keeps its rows.
    let _yarn = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(64)
            .n_threads(1)
            .rope_scaling(llamacpp::RopeScaling::Yarn)
            .rope_freq_scale(0.25)
            .yarn_orig_ctx(256),
    );
    let mut fresh = Context::new(&model, ContextParams::default().n_ctx(512).n_threads(1)).unwrap();
    assert!(matches!(
        fresh.decode(&mut Batch::from_tokens(&[t], rows, 0).unwrap()),
        Err(Error::OutOfRange {
            what: "position",
            ..
        })
    ));
    // A model without a table is not limited by its training context.
    let dense = common::dense();
    let mut ctx = Context::new(&dense, ContextParams::default().n_ctx(64).n_threads(1)).unwrap();
    let far = dense.n_ctx_train() + 10;
    ctx.decode(&mut Batch::from_tokens(&[dense.vocab().token(10).unwrap()], far, 0).unwrap())
        .unwrap();
}
