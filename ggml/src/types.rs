//! The tensor storage types the project writes and checks, with ggml's value, name and layout.

use std::fmt;

/// Storage type of a tensor: the float types and the block-quantized types the project
/// writes, tests or benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)] // ggml's spelling
#[non_exhaustive]
pub enum TensorType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// 1-bit blocks (the repack code has a layout for them).
    Q1_0,
    /// 4-bit blocks of 32 with an f16 scale.
    Q4_0,
    /// 4-bit blocks of 32 with an f16 scale and minimum.
    Q4_1,
    /// 5-bit blocks of 32 (the fallback of `Q4_K` for rows not divisible by 256).
    Q5_0,
    /// 5-bit blocks of 32 with an f16 scale and minimum.
    Q5_1,
    /// 8-bit blocks of 32 with an f16 scale.
    Q8_0,
    /// 4-bit microscaling floats, blocks of 32.
    MXFP4,
    /// 2-bit k-quant super-blocks of 256.
    Q2_K,
    /// 4-bit k-quant super-blocks of 256.
    Q4_K,
    /// 5-bit k-quant super-blocks of 256.
    Q5_K,
    /// 6-bit k-quant super-blocks of 256.
    Q6_K,
    /// 4-bit non-linear blocks of 32.
    IQ4_NL,
    /// bfloat16.
    BF16,
}

impl TensorType {
    /// Every type, in the order of ggml's enum.
    pub const ALL: [Self; 15] = [
        Self::F32,
        Self::F16,
        Self::Q1_0,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::MXFP4,
        Self::Q2_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::IQ4_NL,
        Self::BF16,
    ];

    /// The matching `ggml_type`.
    #[must_use]
    pub fn ggml(self) -> llamacpp_sys::ggml_type {
        use llamacpp_sys as sys;
        match self {
            Self::F32 => sys::GGML_TYPE_F32,
            Self::F16 => sys::GGML_TYPE_F16,
            Self::Q1_0 => sys::GGML_TYPE_Q1_0,
            Self::Q4_0 => sys::GGML_TYPE_Q4_0,
            Self::Q4_1 => sys::GGML_TYPE_Q4_1,
            Self::Q5_0 => sys::GGML_TYPE_Q5_0,
            Self::Q5_1 => sys::GGML_TYPE_Q5_1,
            Self::Q8_0 => sys::GGML_TYPE_Q8_0,
            Self::MXFP4 => sys::GGML_TYPE_MXFP4,
            Self::Q2_K => sys::GGML_TYPE_Q2_K,
            Self::Q4_K => sys::GGML_TYPE_Q4_K,
            Self::Q5_K => sys::GGML_TYPE_Q5_K,
            Self::Q6_K => sys::GGML_TYPE_Q6_K,
            Self::IQ4_NL => sys::GGML_TYPE_IQ4_NL,
            Self::BF16 => sys::GGML_TYPE_BF16,
        }
    }

    /// The type with this `ggml_type` value, if it is one of ours.
    #[must_use]
    pub fn from_ggml(t: llamacpp_sys::ggml_type) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.ggml() == t)
    }

    /// ggml's name for the type (`"q4_0"`, `"q4_K"`, ...), as `ggml_type_name` gives it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Q1_0 => "q1_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q8_0 => "q8_0",
            Self::MXFP4 => "mxfp4",
            Self::Q2_K => "q2_K",
            Self::Q4_K => "q4_K",
            Self::Q5_K => "q5_K",
            Self::Q6_K => "q6_K",
            Self::IQ4_NL => "iq4_nl",
            Self::BF16 => "bf16",
        }
    }

    /// Elements per block (1 for float types).
    #[must_use]
    pub fn block_size(self) -> u64 {
        // SAFETY: ggml_blck_size only reads a static table; every value of ours is a valid type.
        let b = unsafe { llamacpp_sys::ggml_blck_size(self.ggml()) };
        u64::try_from(b).unwrap_or(1)
    }

    /// Bytes of one row of `ne0` elements. A partial last block counts as a whole one
    /// (ggml's own `ggml_row_size` aborts on it instead); a row of whole blocks, the only
    /// kind ggml stores, gets ggml's exact size.
    #[must_use]
    pub fn row_bytes(self, ne0: u64) -> u64 {
        // SAFETY: ggml_type_size only reads a static table; every value of ours is a valid type.
        let block_bytes = unsafe { llamacpp_sys::ggml_type_size(self.ggml()) } as u64;
        ne0.div_ceil(self.block_size()) * block_bytes
    }

    /// Whether this is a block-quantized type (not a float type).
    #[must_use]
    pub fn is_quantized(self) -> bool {
        !matches!(self, Self::F32 | Self::F16 | Self::BF16)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_sizes_match_block_layouts() {
        assert_eq!(TensorType::Q4_0.row_bytes(64), 2 * 18);
        assert_eq!(TensorType::Q8_0.row_bytes(32), 34);
        assert_eq!(TensorType::Q4_K.row_bytes(256), 144);
        assert_eq!(TensorType::F16.row_bytes(3), 6);
        // A partial block is a whole one, where ggml_row_size would abort the process.
        assert_eq!(TensorType::Q4_0.row_bytes(33), 2 * 18);
    }

    #[test]
    fn names_are_ggmls() {
        for t in TensorType::ALL {
            // SAFETY: ggml_type_name returns a static NUL-terminated string for a valid type.
            let name = unsafe { std::ffi::CStr::from_ptr(llamacpp_sys::ggml_type_name(t.ggml())) };
            assert_eq!(name.to_str(), Ok(t.name()));
        }
    }

    #[test]
    fn ggml_values_round_trip() {
        for t in TensorType::ALL {
            assert_eq!(TensorType::from_ggml(t.ggml()), Some(t));
        }
        assert_eq!(TensorType::from_ggml(llamacpp_sys::GGML_TYPE_IQ2_XXS), None);
    }
}
