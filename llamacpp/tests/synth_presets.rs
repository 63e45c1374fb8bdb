//! Every preset and layout `llamacpp-synth` writes loads with the expected properties,
//! and decodes to finite logits and a varied greedy continuation.

mod common;

use common::synth::{distinct, greedy, load_cpu};
use llamacpp::{Model, Token};
use llamacpp_synth::{LinearLayout, ModelSpec, Preset, SynthOptions, Vocab, cached_model};

/// Load `opts`' model and check everything llama.cpp reports against the spec.
fn check(opts: &SynthOptions) -> Model {
    let spec = ModelSpec::from_options(opts).unwrap();
    let path = cached_model(opts).unwrap();
    let model =
        load_cpu(&path).unwrap_or_else(|e| panic!("llama.cpp refused {}: {e}", path.display()));
    assert_eq!(
        model.meta("general.architecture").as_deref(),
        Some(opts.preset.arch())
    );
    assert_eq!(model.n_layer() as u32, spec.n_layer);
    assert_eq!(model.n_embd() as u64, spec.n_embd);
    assert_eq!(model.vocab().n_tokens() as u32, spec.n_vocab);
    assert_eq!(model.n_params(), spec.n_params(), "parameter count");
    assert_eq!(model.size(), spec.data_bytes(), "tensor bytes");
    // llama.cpp sees the hyperparameters the spec states, not its defaults
    let arch = opts.preset.arch();
    let u = |k: &str| {
        spec.metadata
            .get_u32(&format!("{arch}.{k}"))
            .map(|v| v as i32)
    };
    assert_eq!(Some(model.n_head()), u("attention.head_count"));
    assert_eq!(Some(model.n_head_kv()), u("attention.head_count_kv"));
    assert_eq!(Some(model.n_ctx_train()), u("context_length"));
    let expected_rope = match arch {
        "llama" => llamacpp_sys::LLAMA_ROPE_TYPE_NORM,
        "qwen35moe" => llamacpp_sys::LLAMA_ROPE_TYPE_IMROPE,
        _ => llamacpp_sys::LLAMA_ROPE_TYPE_NEOX,
    };
    assert_eq!(model.rope_type(), expected_rope);
    for (key, value) in spec.metadata.entries() {
        if let llamacpp_synth::MetaValue::U32(v) = value {
            assert_eq!(model.meta(key), Some(v.to_string()), "{key}");
        }
    }
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_len > spec.data_bytes() && file_len < spec.data_bytes() + (4 << 20),
        "file is {file_len} bytes"
    );
    model
}

/// Greedy decoding of a short prompt gives finite logits and at least two
/// distinct tokens in 16 steps.
fn decodes(model: &Model, prompt: &[Token]) {
    let out = greedy(model, prompt, 16);
    let n_vocab = model.vocab().n_tokens();
    assert!(out.iter().all(|t| t.id() >= 0 && t.id() < n_vocab));
    assert!(distinct(&out) >= 2, "degenerate continuation {out:?}");
}

/// Token ids of `model`'s vocabulary as tokens.
fn tokens(model: &Model, ids: &[i32]) -> Vec<Token> {
    let vocab = model.vocab();
    ids.iter().map(|&id| vocab.token(id).unwrap()).collect()
}

fn check_and_decode(opts: &SynthOptions) {
    let model = check(opts);
    let prompt = match opts.vocab {
        Vocab::Bpe => model
            .vocab()
            .tokenize("The weather is good, so we walk to the river.", true, false)
            .unwrap(),
        Vocab::None { size } => {
            let ids: Vec<i32> = (0..8).map(|i| (i * 97 % size) as i32).collect();
            tokens(&model, &ids)
        }
    };
    decodes(&model, &prompt);
}

#[test]
fn qwen3next_tiny() {
    check_and_decode(&SynthOptions::new(Preset::Qwen3NextTiny));
}

#[test]
fn qwen3next_tiny_legacy_layout_fused_experts() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.layout = LinearLayout::Legacy;
    o.fused_experts = true;
    check_and_decode(&o);
}

#[test]
fn qwen3next_tiny_fused_experts() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.fused_experts = true;
    check_and_decode(&o);
}

#[test]
fn qwen3next_tiny_more_layers() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.layers = Some(8);
    let model = check(&o);
    assert_eq!(model.n_layer(), 8);
}

#[test]
fn qwen35moe_tiny() {
    check_and_decode(&SynthOptions::new(Preset::Qwen35MoeTiny));
}

#[test]
fn qwen35moe_tiny_fused_experts() {
    let mut o = SynthOptions::new(Preset::Qwen35MoeTiny);
    o.fused_experts = true;
    check_and_decode(&o);
}

#[test]
fn qwen3moe_tiny() {
    check_and_decode(&SynthOptions::new(Preset::Qwen3MoeTiny));
}

#[test]
fn llama_tiny() {
    check_and_decode(&SynthOptions::new(Preset::LlamaTiny));
}

#[test]
fn no_vocab_sets_the_vocabulary_size() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.vocab = Vocab::None { size: 3000 };
    let model = check(&o);
    assert_eq!(model.vocab().n_tokens(), 3000);
    assert_eq!(
        model.meta("tokenizer.ggml.model").as_deref(),
        Some("no_vocab")
    );
    decodes(&model, &tokens(&model, &[5, 900, 2999, 17]));
}
