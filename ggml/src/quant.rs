//! Turning f32 rows into a tensor's storage type with ggml's own converters and
//! quantizers (checking the result with ggml's validator), and back.

use std::ffi::c_void;

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::types::TensorType;

/// A byte buffer aligned to 8 bytes, as the quantized block structs (with
/// their f16 scale fields) and the f16/bf16 rows expect.
#[derive(Default)]
pub struct AlignedBytes {
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

    fn as_mut_bytes(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes (len.div_ceil(8)
        // u64s), u8 has no alignment requirement, and the slice borrows self.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Encodes `src` (whole rows of `row_len` elements) as `ty` into `out`.
///
/// F16 and BF16 use `ggml_fp32_to_fp16_row` / `ggml_fp32_to_bf16_row`; the
/// quantized types use `ggml_quantize_chunk` (reference quantizers, no
/// importance matrix). Every result goes through `ggml_validate_row_data`, so a
/// NaN or Inf scale is reported instead of written.
///
/// # Errors
/// Rows that are not whole blocks of `ty` (ggml would abort on them), a length that is not
/// whole rows, and data ggml's validator refuses (a NaN or Inf).
///
/// ```
/// use llamacpp_ggml::{AlignedBytes, TensorType, decode, encode};
/// let src: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
/// let mut out = AlignedBytes::default();
/// encode(TensorType::Q8_0, &src, 64, &mut out)?;
/// assert_eq!(out.as_bytes().len(), 2 * 34);
/// let back = decode(TensorType::Q8_0, out.as_bytes(), 64)?;
/// assert!(llamacpp_ggml::nmse(&back, &src) < 1e-4);
/// # Ok::<(), llamacpp_ggml::Error>(())
/// ```
pub fn encode(ty: TensorType, src: &[f32], row_len: usize, out: &mut AlignedBytes) -> Result<()> {
    let n = src.len();
    let block = ty.block_size();
    if row_len == 0 || !(row_len as u64).is_multiple_of(block) {
        return Err(Error::RowLength { ty, row_len, block });
    }
    if !n.is_multiple_of(row_len) {
        return Err(Error::PartialRow { len: n, row_len });
    }
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
        _ => {
            // SAFETY: ggml_quantize_requires_imatrix only reads a table.
            if unsafe { sys::ggml_quantize_requires_imatrix(ty.ggml()) } {
                return Err(Error::NeedsImportanceMatrix(ty));
            }
            // src holds n_rows whole rows; dst has n_rows rows of ggml_row_size bytes,
            // 8-aligned; row_len is a multiple of the block size (checked above);
            // start 0, no imatrix (not required, checked above).
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
                return Err(Error::Size {
                    ty,
                    written,
                    expected: n_bytes,
                });
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
        Err(Error::InvalidData(ty))
    }
}

/// Decodes `n` values of type `ty` from `bytes` with ggml's own converter.
///
/// # Errors
/// `n` not whole blocks of `ty`, or `bytes` not exactly their size.
pub fn decode(ty: TensorType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    let block = ty.block_size();
    if !(n as u64).is_multiple_of(block) {
        return Err(Error::RowLength {
            ty,
            row_len: n,
            block,
        });
    }
    let expected = ty.row_bytes(n as u64) as usize;
    if bytes.len() != expected {
        return Err(Error::Size {
            ty,
            written: bytes.len(),
            expected,
        });
    }
    let mut back = vec![0f32; n];
    if ty == TensorType::F32 {
        for (v, b) in back.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        return Ok(back);
    }
    // SAFETY: ggml_get_type_traits returns a pointer to its static table's entry for a
    // valid type, which every value of ours is.
    let traits = unsafe { &*sys::ggml_get_type_traits(ty.ggml()) };
    let Some(to_float) = traits.to_float else {
        return Err(Error::NoConverter(ty));
    };
    // The block structs have 2-byte fields: give ggml an aligned copy, as `encode` writes.
    let mut aligned = AlignedBytes::default();
    aligned.reset(bytes.len());
    aligned.as_mut_bytes().copy_from_slice(bytes);
    // SAFETY: `aligned` holds exactly n values of `ty` (whole blocks, size checked above),
    // 8-aligned, and `back` has room for n floats; the two do not overlap.
    unsafe {
        to_float(
            aligned.as_mut_ptr().cast_const(),
            back.as_mut_ptr(),
            n as i64,
        )
    };
    Ok(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_error(ty: TensorType) -> f32 {
        let src: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let mut out = AlignedBytes::default();
        encode(ty, &src, 256, &mut out).unwrap();
        assert_eq!(out.as_bytes().len() as u64, 2 * ty.row_bytes(256));
        if ty == TensorType::F32 {
            let same = out
                .as_bytes()
                .chunks(4)
                .zip(&src)
                .all(|(b, v)| b == v.to_le_bytes());
            return if same { 0.0 } else { 1.0 };
        }
        let back = decode(ty, out.as_bytes(), 512).unwrap();
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
        assert!(matches!(
            encode(TensorType::F16, &src, 64, &mut out),
            Err(Error::InvalidData(TensorType::F16))
        ));
    }

    #[test]
    fn lengths_ggml_would_abort_on_are_refused() {
        let mut out = AlignedBytes::default();
        let src = vec![0.5f32; 96];
        // 48 is not whole Q4_0 blocks (32); 96 values are not whole rows of 64.
        assert!(matches!(
            encode(TensorType::Q4_0, &src, 48, &mut out),
            Err(Error::RowLength {
                row_len: 48,
                block: 32,
                ..
            })
        ));
        assert!(matches!(
            encode(TensorType::Q4_0, &src, 64, &mut out),
            Err(Error::PartialRow {
                len: 96,
                row_len: 64
            })
        ));
        assert!(matches!(
            encode(TensorType::F32, &src, 0, &mut out),
            Err(Error::RowLength { row_len: 0, .. })
        ));
        assert!(matches!(
            decode(TensorType::Q8_0, &[0u8; 33], 32),
            Err(Error::Size {
                written: 33,
                expected: 34,
                ..
            })
        ));
        assert!(matches!(
            decode(TensorType::Q8_0, &[0u8; 34], 31),
            Err(Error::RowLength { .. })
        ));
    }
}
