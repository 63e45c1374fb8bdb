//! The file type (the `--type` a user picks) and the tensor type each matrix gets from it.

use std::fmt;
use std::str::FromStr;

use llamacpp_ggml::TensorType;

use crate::error::SynthError;

/// The type requested for the large matrices, like `llama-quantize`'s file type.
///
/// Tensors that real conversions keep in F32 (1-D tensors, norms, biases,
/// `ssm_a`, the MoE router `ffn_gate_inp`, `ssm_conv1d`) stay F32 whatever is
/// chosen here; see [`crate::spec::storage_type`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)] // ggml's spelling
pub enum FileType {
    /// Everything in F32.
    F32,
    /// Matrices in F16.
    F16,
    /// Matrices in BF16.
    BF16,
    /// Matrices in Q8_0.
    Q8_0,
    /// Matrices in Q4_0.
    Q4_0,
    /// Matrices in Q4_K (rows not divisible by 256 fall back to Q5_0).
    Q4_K,
}

impl FileType {
    /// All file types, in the order the CLI lists them.
    pub const ALL: [Self; 6] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q8_0,
        Self::Q4_0,
        Self::Q4_K,
    ];

    /// The tensor type used for matrices whose rows fit its block size.
    #[must_use]
    pub fn tensor_type(self) -> TensorType {
        match self {
            Self::F32 => TensorType::F32,
            Self::F16 => TensorType::F16,
            Self::BF16 => TensorType::BF16,
            Self::Q8_0 => TensorType::Q8_0,
            Self::Q4_0 => TensorType::Q4_0,
            Self::Q4_K => TensorType::Q4_K,
        }
    }

    /// The `llama_ftype` stored as `general.file_type`.
    ///
    /// Q4_K maps to `MOSTLY_Q4_K_S`, the k-quant mix closest to "every matrix Q4_K".
    #[must_use]
    pub fn llama_ftype(self) -> u32 {
        match self {
            Self::F32 => llamacpp_sys::LLAMA_FTYPE_ALL_F32,
            Self::F16 => llamacpp_sys::LLAMA_FTYPE_MOSTLY_F16,
            Self::BF16 => llamacpp_sys::LLAMA_FTYPE_MOSTLY_BF16,
            Self::Q8_0 => llamacpp_sys::LLAMA_FTYPE_MOSTLY_Q8_0,
            Self::Q4_0 => llamacpp_sys::LLAMA_FTYPE_MOSTLY_Q4_0,
            Self::Q4_K => llamacpp_sys::LLAMA_FTYPE_MOSTLY_Q4_K_S,
        }
    }

    /// The type a matrix with rows of `ne0` elements gets.
    ///
    /// Mirrors `tensor_type_fallback` in llama.cpp's `llama-quant.cpp`: a row
    /// that is not a multiple of the block size demotes Q4_K to Q5_0, and any
    /// type whose block still does not fit becomes F16.
    #[must_use]
    pub fn resolve(self, ne0: u64) -> TensorType {
        let wanted = self.tensor_type();
        if ne0.is_multiple_of(wanted.block_size()) {
            return wanted;
        }
        let fallback = match wanted {
            TensorType::Q4_K => TensorType::Q5_0,
            other => other,
        };
        if ne0.is_multiple_of(fallback.block_size()) {
            fallback
        } else {
            TensorType::F16
        }
    }

    /// The lower-case name accepted by [`FromStr`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_K => "q4_k",
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FileType {
    type Err = SynthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.name() == lower)
            .ok_or_else(|| SynthError::UnknownName {
                what: "type",
                given: s.to_owned(),
                expected: Self::ALL
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        for t in FileType::ALL {
            assert_eq!(t.name().parse::<FileType>().ok(), Some(t));
        }
        assert_eq!("Q4_K".parse::<FileType>().ok(), Some(FileType::Q4_K));
        assert!("q3_k".parse::<FileType>().is_err());
    }

    #[test]
    fn fallback_follows_llama_quantize() {
        assert_eq!(FileType::Q4_K.resolve(2048), TensorType::Q4_K);
        assert_eq!(FileType::Q4_K.resolve(64), TensorType::Q5_0);
        assert_eq!(FileType::Q4_K.resolve(48), TensorType::F16);
        assert_eq!(FileType::Q4_0.resolve(96), TensorType::Q4_0);
        assert_eq!(FileType::Q8_0.resolve(40), TensorType::F16);
        assert_eq!(FileType::BF16.resolve(7), TensorType::BF16);
    }
}
