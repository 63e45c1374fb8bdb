//! What the user asks for.

use std::fmt;
use std::str::FromStr;

use super::Preset;
use crate::error::{Result, SynthError};
use crate::types::FileType;
use crate::vocab::{BpeVocab, Vocab};

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
        format!(
            "{}|layers={:?}|{}|seed={}|{vocab}|{}|fused={}|bpe-min={}",
            self.preset,
            self.layers,
            self.ftype,
            self.seed,
            self.layout,
            self.fused_experts,
            BpeVocab::MIN_SIZE
        )
    }
}
