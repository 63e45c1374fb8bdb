//! Named model presets.

use std::fmt;
use std::str::FromStr;

use crate::error::SynthError;

/// A named model shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Qwen3-Next-80B-A3B at its true width (48 layers unless overridden).
    Qwen3Next80bA3b,
    /// A few-MB qwen3next with the same structure (linear and full attention,
    /// routed and shared experts), for unit tests.
    Qwen3NextTiny,
    /// A few-MB qwen35moe (Qwen3.5 MoE: separate beta/alpha, interleaved M-RoPE).
    Qwen35MoeTiny,
    /// Qwen3-30B-A3B at its true width (48 layers unless overridden): 128 experts, top-8.
    Qwen3Moe30bA3b,
    /// A few-MB qwen3moe (full attention only, routed experts).
    Qwen3MoeTiny,
    /// A few-MB dense llama with grouped-query attention.
    LlamaTiny,
    /// Llama-3-8B at its true width (32 layers unless overridden): the dense baseline.
    Llama3_8b,
    /// A few-MB GPT-2: learned absolute positions (a 256-row table), LayerNorm with biases.
    Gpt2Tiny,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Self; 8] = [
        Self::Qwen3Next80bA3b,
        Self::Qwen3NextTiny,
        Self::Qwen35MoeTiny,
        Self::Qwen3Moe30bA3b,
        Self::Qwen3MoeTiny,
        Self::LlamaTiny,
        Self::Llama3_8b,
        Self::Gpt2Tiny,
    ];

    /// The presets small enough for tests.
    pub const TINY: [Self; 4] = [
        Self::Qwen3NextTiny,
        Self::Qwen35MoeTiny,
        Self::Qwen3MoeTiny,
        Self::LlamaTiny,
    ];

    /// The name accepted by [`FromStr`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Qwen3Next80bA3b => "qwen3next-80b-a3b",
            Self::Qwen3NextTiny => "qwen3next-tiny",
            Self::Qwen35MoeTiny => "qwen35moe-tiny",
            Self::Qwen3Moe30bA3b => "qwen3moe-30b-a3b",
            Self::Qwen3MoeTiny => "qwen3moe-tiny",
            Self::LlamaTiny => "llama-tiny",
            Self::Llama3_8b => "llama3-8b",
            Self::Gpt2Tiny => "gpt2-tiny",
        }
    }

    /// The preset's vocabulary size (what [`crate::Vocab::Bpe`] gets, and
    /// the CLI's default for `--no-vocab`).
    #[must_use]
    pub fn n_vocab(self) -> u32 {
        match self {
            Self::Qwen3Next80bA3b => super::qwen3next::Qwen3NextParams::qwen3next_80b_a3b().n_vocab,
            Self::Qwen3NextTiny => super::qwen3next::Qwen3NextParams::tiny().n_vocab,
            Self::Qwen35MoeTiny => super::qwen35moe::Qwen35MoeParams::tiny().base.n_vocab,
            Self::Qwen3Moe30bA3b => super::qwen3moe::Qwen3MoeParams::qwen3moe_30b_a3b().n_vocab,
            Self::Qwen3MoeTiny => super::qwen3moe::Qwen3MoeParams::tiny().n_vocab,
            Self::LlamaTiny => super::llama::LlamaParams::tiny().n_vocab,
            Self::Llama3_8b => super::llama::LlamaParams::llama3_8b().n_vocab,
            Self::Gpt2Tiny => super::gpt2::Gpt2Params::tiny().n_vocab,
        }
    }

    /// `general.architecture` of the preset.
    #[must_use]
    pub fn arch(self) -> &'static str {
        match self {
            Self::Qwen3Next80bA3b | Self::Qwen3NextTiny => "qwen3next",
            Self::Qwen35MoeTiny => "qwen35moe",
            Self::Qwen3Moe30bA3b | Self::Qwen3MoeTiny => "qwen3moe",
            Self::LlamaTiny | Self::Llama3_8b => "llama",
            Self::Gpt2Tiny => "gpt2",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| SynthError::UnknownName {
                what: "preset",
                given: s.to_owned(),
                expected: Self::ALL
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().ok(), Some(p));
        }
        assert!("qwen3next".parse::<Preset>().is_err());
    }
}
