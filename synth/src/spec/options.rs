//! What the user asks for.

use std::fmt;
use std::str::FromStr;

use super::Preset;
use crate::error::{Result, SynthError};
use crate::types::FileType;
use crate::vocab::{BpeVocab, Vocab};
use llamacpp_ggml::rng::fnv1a64;

/// Tensor layout of qwen3next's linear-attention (gated delta net) layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinearLayout {
    /// Current conversions: `attn_qkv` (query, key, value) plus `attn_gate` (z).
    #[default]
    Current,
    /// Older conversions: one interleaved `ssm_in` projection (query, key, value, z),
    /// which llama.cpp still loads on a slower path.
    Legacy,
}

impl LinearLayout {
    /// The name accepted by [`FromStr`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Legacy => "legacy",
        }
    }
}

impl fmt::Display for LinearLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LinearLayout {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "current" => Ok(Self::Current),
            "legacy" => Ok(Self::Legacy),
            _ => Err(SynthError::UnknownName {
                what: "layout",
                given: s.to_owned(),
                expected: "current, legacy".into(),
            }),
        }
    }
}

/// Options for one synthetic model. Same options, same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SynthOptions {
    /// The model shape.
    pub preset: Preset,
    /// Number of layers instead of the preset's (width unchanged).
    pub layers: Option<u32>,
    /// Type of the large matrices.
    pub ftype: FileType,
    /// Seed of every value in the file.
    pub seed: u64,
    /// Tokenizer.
    pub vocab: Vocab,
    /// Linear-attention layout (qwen3next only).
    pub layout: LinearLayout,
    /// One fused `ffn_gate_up_exps` instead of `ffn_gate_exps` + `ffn_up_exps`
    /// (qwen3next and qwen35moe only).
    pub fused_experts: bool,
    /// `tokenizer.chat_template` instead of the built-in ChatML one (BPE vocabulary only),
    /// for testing a real model's template.
    pub chat_template: Option<String>,
    /// Control tokens added after the ChatML ones (BPE vocabulary only; they take padding
    /// slots, the vocabulary size is unchanged), so a template's markup becomes control tokens.
    pub extra_control_tokens: Vec<String>,
    /// One multi-token-prediction (NextN) block after the trunk, as Qwen3-Next ships it
    /// (qwen3next only); llama.cpp loads it with `load_mtp` and drafts with it.
    pub mtp: bool,
}

/// Seed used unless another is given.
pub const DEFAULT_SEED: u64 = 42;
/// Most layers llama.cpp accepts (`LLAMA_MAX_LAYERS`).
const MAX_LAYERS: u32 = 512;

impl SynthOptions {
    /// The preset with default options: its own depth, Q8_0, seed 42, the BPE
    /// vocabulary, the current layout, separate expert tensors.
    #[must_use]
    pub fn new(preset: Preset) -> Self {
        Self {
            preset,
            layers: None,
            ftype: FileType::Q8_0,
            seed: DEFAULT_SEED,
            vocab: Vocab::Bpe,
            layout: LinearLayout::Current,
            fused_experts: false,
            chat_template: None,
            extra_control_tokens: Vec::new(),
            mtp: false,
        }
    }

    /// Check options that do not depend on the architecture's numbers.
    pub(crate) fn validate(&self) -> Result<()> {
        let arch = self.preset.arch();
        if let Some(n) = self.layers
            && !(1..=MAX_LAYERS).contains(&n)
        {
            return Err(SynthError::InvalidOptions(format!(
                "layers must be 1..={MAX_LAYERS}, got {n}"
            )));
        }
        if self.layout == LinearLayout::Legacy && arch != "qwen3next" {
            return Err(SynthError::InvalidOptions(format!(
                "the legacy ssm_in layout exists only for qwen3next, not {arch}"
            )));
        }
        if self.fused_experts && !matches!(arch, "qwen3next" | "qwen35moe") {
            return Err(SynthError::InvalidOptions(format!(
                "fused ffn_gate_up_exps is loaded for qwen3next and qwen35moe only, not {arch}"
            )));
        }
        if self.mtp && arch != "qwen3next" {
            return Err(SynthError::InvalidOptions(format!(
                "the MTP (NextN) block is written for qwen3next only, not {arch}"
            )));
        }
        let customised = self.chat_template.is_some() || !self.extra_control_tokens.is_empty();
        if customised && self.vocab != Vocab::Bpe {
            return Err(SynthError::InvalidOptions(
                "a chat template and extra control tokens need the BPE vocabulary".into(),
            ));
        }
        if let Vocab::None { size } = self.vocab
            && size == 0
        {
            return Err(SynthError::InvalidOptions(
                "vocabulary size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// A stable text naming every option (used as a cache key).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let vocab = match self.vocab {
            Vocab::Bpe => "bpe".to_owned(),
            Vocab::None { size } => format!("none{size}"),
        };
        let mut key = format!(
            "{}|layers={:?}|{}|seed={}|{vocab}|{}|fused={}|bpe-min={}",
            self.preset,
            self.layers,
            self.ftype,
            self.seed,
            self.layout,
            self.fused_experts,
            BpeVocab::MIN_SIZE
        );
        // Only when set, so the default options keep their key (and their cached files).
        if let Some(t) = &self.chat_template {
            key.push_str(&format!("|template={:016x}", fnv1a64(t.as_bytes())));
        }
        if !self.extra_control_tokens.is_empty() {
            key.push_str(&format!("|controls={:?}", self.extra_control_tokens));
        }
        if self.mtp {
            key.push_str("|mtp");
        }
        key
    }
}
