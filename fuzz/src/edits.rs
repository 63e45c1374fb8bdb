//! Semantic corruptions of a model's metadata: the edits the `gguf_metadata`
//! target draws with `arbitrary`, and the named ones the seed corpus is made of.
//!
//! Byte flips mostly break the GGUF container, which ggml's parser already
//! rejects; these edits keep the container valid and change what the values
//! mean (types, ranges, vocabularies), which is where llama.cpp still asserts.

use arbitrary::Arbitrary;
use llamacpp_synth::{MetaValue, ModelSpec};

/// Keys under `<arch>.` that llama.cpp reads as hyperparameters.
const ARCH_KEYS: &[&str] = &[
    "context_length",
    "embedding_length",
    "feed_forward_length",
    "block_count",
    "vocab_size",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.dimension_count",
    "rope.dimension_sections",
    "rope.freq_base",
    "rope.scaling.type",
    "rope.scaling.factor",
    "rope.scaling.original_context_length",
    "expert_count",
    "expert_used_count",
    "expert_feed_forward_length",
    "expert_shared_feed_forward_length",
    "full_attention_interval",
    "ssm.conv_kernel",
    "ssm.state_size",
    "ssm.group_count",
    "ssm.inner_size",
    "ssm.time_step_rank",
];

/// Keys outside the architecture's namespace.
const GLOBAL_KEYS: &[&str] = &[
    "general.alignment",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.merges",
    "tokenizer.chat_template",
];

/// Tokenizer model names llama.cpp knows, and one it does not.
const TOKENIZERS: &[&str] = &[
    "llama", "gpt2", "bert", "t5", "rwkv", "plamo2", "no_vocab", "none", "qwen9",
];

/// A metadata value of any GGUF type the writer supports.
#[derive(Arbitrary, Debug, Clone)]
pub enum Value {
    /// A small unsigned value (the interesting range for counts).
    Small(u8),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    ArrI32(Vec<i32>),
    ArrF32(Vec<f32>),
    ArrStr(Vec<String>),
}

impl From<Value> for MetaValue {
    fn from(v: Value) -> MetaValue {
        match v {
            Value::Small(x) => MetaValue::U32(u32::from(x)),
            Value::U32(x) => MetaValue::U32(x),
            Value::I32(x) => MetaValue::I32(x),
            Value::F32(x) => MetaValue::F32(x),
            Value::Bool(x) => MetaValue::Bool(x),
            Value::Str(x) => MetaValue::Str(x),
            Value::ArrI32(x) => MetaValue::ArrI32(x),
            Value::ArrF32(x) => MetaValue::ArrF32(x),
            Value::ArrStr(x) => MetaValue::ArrStr(x),
        }
    }
}

/// One change to a spec's metadata.
#[derive(Arbitrary, Debug, Clone)]
pub enum Edit {
    /// Sets the `key`-th existing entry (modulo their count) to `value`.
    SetExisting { key: u16, value: Value },
    /// Removes the `key`-th existing entry.
    Remove { key: u16 },
    /// Sets a hyperparameter key of the architecture.
    SetArch { key: u8, value: Value },
    /// Sets a tokenizer or general key.
    SetGlobal { key: u8, value: Value },
    /// Gives token `to` the string of token `from` (a duplicate vocabulary entry).
    DuplicateToken { from: u16, to: u16 },
    /// Sets the type of token `token` (1 normal .. 6 byte; others are invalid).
    TokenType { token: u16, ty: i8 },
    /// Switches the tokenizer model.
    Tokenizer { model: u8 },
}

fn pick<T>(items: &[T], i: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[i % items.len()])
}

impl Edit {
    /// Applies the edit to `spec`.
    pub fn apply(self, spec: &mut ModelSpec) {
        let arch = spec.arch.clone();
        let m = &mut spec.metadata;
        match self {
            Edit::SetExisting { key, value } => {
                if let Some((k, _)) = pick(m.entries(), key.into()).cloned() {
                    m.set(k, value.into());
                }
            }
            Edit::Remove { key } => {
                if let Some((k, _)) = pick(m.entries(), key.into()).cloned() {
                    m.remove(&k);
                }
            }
            Edit::SetArch { key, value } => {
                if let Some(k) = pick(ARCH_KEYS, key.into()) {
                    m.set(format!("{arch}.{k}"), value.into());
                }
            }
            Edit::SetGlobal { key, value } => {
                if let Some(k) = pick(GLOBAL_KEYS, key.into()) {
                    m.set(*k, value.into());
                }
            }
            Edit::DuplicateToken { from, to } => {
                if let Some(MetaValue::ArrStr(tokens)) = m.get("tokenizer.ggml.tokens").cloned() {
                    let mut tokens = tokens;
                    let n = tokens.len();
                    if n > 0 {
                        let (f, t) = (usize::from(from) % n, usize::from(to) % n);
                        tokens[t] = tokens[f].clone();
                        m.set("tokenizer.ggml.tokens", MetaValue::ArrStr(tokens));
                    }
                }
            }
            Edit::TokenType { token, ty } => {
                if let Some(MetaValue::ArrI32(types)) = m.get("tokenizer.ggml.token_type").cloned()
                {
                    let mut types = types;
                    let n = types.len();
                    if n > 0 {
                        types[usize::from(token) % n] = i32::from(ty);
                        m.set("tokenizer.ggml.token_type", MetaValue::ArrI32(types));
                    }
                }
            }
            Edit::Tokenizer { model } => {
                if let Some(name) = pick(TOKENIZERS, model.into()) {
                    m.set("tokenizer.ggml.model", MetaValue::Str((*name).into()));
                }
            }
        }
    }
}

/// The named corruptions of issue 23's list that a metadata edit can express,
/// for the seed corpus (each still a valid GGUF container).
pub fn named() -> Vec<(&'static str, Vec<Edit>)> {
    let arch_key = |k: &str| ARCH_KEYS.iter().position(|a| *a == k).unwrap_or(0) as u8;
    let global_key = |k: &str| GLOBAL_KEYS.iter().position(|a| *a == k).unwrap_or(0) as u8;
    let tok = |k: &str| TOKENIZERS.iter().position(|a| *a == k).unwrap_or(0) as u8;
    vec![
        (
            "rope-dim-odd",
            vec![Edit::SetArch {
                key: arch_key("rope.dimension_count"),
                value: Value::Small(7),
            }],
        ),
        (
            "rope-dim-huge",
            vec![Edit::SetArch {
                key: arch_key("rope.dimension_count"),
                value: Value::U32(4096),
            }],
        ),
        (
            "rope-scaling-unknown",
            vec![Edit::SetArch {
                key: arch_key("rope.scaling.type"),
                value: Value::Str("spiral".into()),
            }],
        ),
        (
            "rope-freq-nan",
            vec![Edit::SetArch {
                key: arch_key("rope.freq_base"),
                value: Value::F32(f32::NAN),
            }],
        ),
        (
            "head-count-zero",
            vec![Edit::SetArch {
                key: arch_key("attention.head_count"),
                value: Value::Small(0),
            }],
        ),
        (
            "context-length-zero",
            vec![Edit::SetArch {
                key: arch_key("context_length"),
                value: Value::Small(0),
            }],
        ),
        (
            "duplicate-token",
            vec![Edit::DuplicateToken { from: 300, to: 301 }],
        ),
        (
            "bert-byte-token",
            vec![
                Edit::Tokenizer { model: tok("bert") },
                Edit::TokenType { token: 5, ty: 6 },
            ],
        ),
        (
            "spm-no-byte-tokens",
            vec![Edit::Tokenizer {
                model: tok("llama"),
            }],
        ),
        ("rwkv-vocab", vec![Edit::Tokenizer { model: tok("rwkv") }]),
        (
            "add-bos-without-bos",
            vec![
                Edit::SetGlobal {
                    key: global_key("tokenizer.ggml.add_bos_token"),
                    value: Value::Bool(true),
                },
                Edit::SetGlobal {
                    key: global_key("tokenizer.ggml.bos_token_id"),
                    value: Value::U32(1 << 30),
                },
            ],
        ),
        (
            "token-type-invalid",
            vec![Edit::TokenType { token: 9, ty: -3 }],
        ),
    ]
}
