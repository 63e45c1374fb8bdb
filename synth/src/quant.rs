//! Turning f32 rows into a tensor's storage type with ggml's own converters
//! and quantizers, and checking the result with ggml's validator.

use std::ffi::c_void;

use llamacpp_sys as sys;

use crate::error::{Result, SynthError};
use crate::types::TensorType;

/// A byte buffer aligned to 8 bytes, as the quantized block structs (with
/// their f16 scale fields) and the f16/bf16 rows expect.
#[derive(Default)]
pub(crate) struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// Make room for `len` bytes (contents unspecified but initialised).
    fn reset(&mut self, len: usize) {
        self.words.clear();
        self.words.resize(len.div_ceil(8), 0);
        self.len = len;
    }

    fn as_mut_ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes (len.div_ceil(8)
        // u64s), u8 has no alignment requirement, and the slice borrows self.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Encode `src` (whole rows of `row_len` elements) as `ty` into `out`.
///
/// F16 and BF16 use `ggml_fp32_to_fp16_row` / `ggml_fp32_to_bf16_row`; the
/// quantized types use `ggml_quantize_chunk` (reference quantizers, no
/// importance matrix). Every result goes through `ggml_validate_row_data`, so a
/// NaN or Inf scale is reported instead of written.
pub(crate) fn encode(
    name: &str,
    ty: TensorType,
    src: &[f32],
    row_len: usize,
    out: &mut AlignedBytes,
) -> Result<()> {
    let n = src.len();
    debug_assert!(row_len > 0 && n.is_multiple_of(row_len));
    let n_rows = n / row_len;
    let n_bytes = n_rows * ty.row_bytes(row_len as u64) as usize;
    out.reset(n_bytes);
    match ty {
        TensorType::F32 => {
            let dst = out.as_mut_ptr().cast::<f32>();
            // SAFETY: dst has room for n f32 (n_bytes = 4n) and is 8-aligned; src is n floats;
            // the regions do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, n) }
        }
        // SAFETY: dst holds n u16 (n_bytes = 2n), 8-aligned; src is n floats.
        TensorType::F16 => unsafe {
            sys::ggml_fp32_to_fp16_row(src.as_ptr(), out.as_mut_ptr().cast(), n as i64)
        },
        // SAFETY: as for F16; ggml_bf16_t is a 2-byte struct.
        TensorType::BF16 => unsafe {
            sys::ggml_fp32_to_bf16_row(src.as_ptr(), out.as_mut_ptr().cast(), n as i64)
        },
        TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q5_0 | TensorType::Q4_K => {
            // SAFETY: ggml_quantize_requires_imatrix only reads a table.
            if unsafe { sys::ggml_quantize_requires_imatrix(ty.ggml()) } {
                return Err(SynthError::Ggml(format!("{ty} needs an importance matrix")));
            }
            // src holds n_rows whole rows; dst has n_rows rows of ggml_row_size bytes,
            // 8-aligned; row_len is a multiple of the block size (the spec resolves types
            // per row length); start 0, no imatrix (not required, checked above).
            // SAFETY: as just described.
            let written = unsafe {
                sys::ggml_quantize_chunk(
                    ty.ggml(),
                    src.as_ptr(),
                    out.as_mut_ptr(),
                    0,
                    n_rows as i64,
                    row_len as i64,
                    std::ptr::null(),
                )
            };
            if written != n_bytes {
                return Err(SynthError::Ggml(format!(
                    "{name}: quantized {written} bytes, expected {n_bytes}"
                )));
            }
        }
    }
    let bytes = out.as_bytes();
    // SAFETY: bytes is a valid buffer of n_bytes; ggml only reads it.
    let valid =
        unsafe { sys::ggml_validate_row_data(ty.ggml(), bytes.as_ptr().cast(), bytes.len()) };
    if valid {
        Ok(())
    } else {
        Err(SynthError::InvalidData {
            tensor: name.to_owned(),
            ty,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_error(ty: TensorType) -> f32 {
        let src: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut out = AlignedBytes::default();
        encode("t", ty, &src, 256, &mut out).unwrap();
        assert_eq!(out.as_bytes().len() as u64, 2 * ty.row_bytes(256));
        if ty == TensorType::F32 {
            let same = out
                .as_bytes()
                .chunks(4)
                .zip(&src)
                .all(|(b, v)| b == v.to_le_bytes());
            return if same { 0.0 } else { 1.0 };
        }
        // SAFETY: ggml_get_type_traits returns a pointer to a static table entry.
        let traits = unsafe { &*sys::ggml_get_type_traits(ty.ggml()) };
        let to_float = traits.to_float.unwrap();
        let mut back = vec![0f32; 512];
        // SAFETY: the buffer holds 512 encoded values; back has room for 512.
        unsafe { to_float(out.as_bytes().as_ptr().cast(), back.as_mut_ptr(), 512) };
        src.iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn every_type_round_trips_approximately() {
        assert_eq!(roundtrip_error(TensorType::F32), 0.0);
        assert!(roundtrip_error(TensorType::F16) < 1e-3);
        assert!(roundtrip_error(TensorType::BF16) < 1e-2);
        assert!(roundtrip_error(TensorType::Q8_0) < 0.01);
        // Q5_0/Q4_0 clamp the extreme of the opposite sign by one step (1/16, 1/8).
        assert!(roundtrip_error(TensorType::Q5_0) < 0.07);
        assert!(roundtrip_error(TensorType::Q4_0) < 0.13);
        assert!(roundtrip_error(TensorType::Q4_K) < 0.1);
    }

    #[test]
    fn nan_is_rejected() {
        let mut src = vec![0.5f32; 64];
        src[3] = f32::NAN;
        let mut out = AlignedBytes::default();
        assert!(encode("t", TensorType::F16, &src, 64, &mut out).is_err());
    }
}
