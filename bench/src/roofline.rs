//! Memory-bandwidth roofline for generation: bytes a decode step must read,
//! and the machine's measured read bandwidth (`llama-bench membw`).

use std::ffi::CString;
use std::time::Instant;

use llamacpp_sys as sys;

use crate::{Result, err};

/// Bytes of weights one generated token reads.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct WeightBytes {
    /// Every non-expert matrix (embeddings excluded: a decode reads one row).
    pub dense: u64,
    /// All expert tensors together.
    pub experts_total: u64,
    /// The share of expert bytes a token reads (`experts_total * top_k / n_expert`).
    pub experts_active: u64,
    /// `dense + experts_active`.
    pub per_token: u64,
}

/// Reads tensor sizes from a GGUF file's header (no weights are loaded).
pub fn weight_bytes(path: &str) -> Result<WeightBytes> {
    let c = CString::new(path).map_err(err)?;
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: path NUL-terminated; with no_alloc only metadata is read; NULL on failure.
    let ctx = unsafe { sys::gguf_init_from_file(c.as_ptr(), params) };
    if ctx.is_null() {
        return Err(format!("{path}: not a readable GGUF file"));
    }
    let key = |name: &str| -> Option<u32> {
        let arch_key = CString::new("general.architecture").ok()?;
        // SAFETY: ctx valid; key NUL-terminated; returns -1 when absent.
        let id = unsafe { sys::gguf_find_key(ctx, arch_key.as_ptr()) };
        if id < 0 {
            return None;
        }
        // SAFETY: id valid; the value type is checked before reading it as a string.
        let arch = unsafe {
            if sys::gguf_get_kv_type(ctx, id) != sys::GGUF_TYPE_STRING {
                return None;
            }
            std::ffi::CStr::from_ptr(sys::gguf_get_val_str(ctx, id))
                .to_string_lossy()
                .into_owned()
        };
        let k = CString::new(format!("{arch}.{name}")).ok()?;
        // SAFETY: as above.
        let id = unsafe { sys::gguf_find_key(ctx, k.as_ptr()) };
        // SAFETY: id valid; type checked before reading.
        (id >= 0 && unsafe { sys::gguf_get_kv_type(ctx, id) } == sys::GGUF_TYPE_UINT32)
            .then(|| unsafe { sys::gguf_get_val_u32(ctx, id) })
    };
    let n_expert = key("expert_count").unwrap_or(0);
    let n_used = key("expert_used_count").unwrap_or(0);
    let mut wb = WeightBytes::default();
    // SAFETY: ctx valid; indices below the count; names are NUL-terminated strings owned by ctx.
    unsafe {
        for i in 0..sys::gguf_get_n_tensors(ctx) {
            let name =
                std::ffi::CStr::from_ptr(sys::gguf_get_tensor_name(ctx, i)).to_string_lossy();
            let size = sys::gguf_get_tensor_size(ctx, i) as u64;
            if name.starts_with("token_embd") {
                continue;
            }
            if name.contains("_exps") {
                wb.experts_total += size;
            } else {
                wb.dense += size;
            }
        }
        sys::gguf_free(ctx);
    }
    if n_expert > 0 {
        wb.experts_active = wb.experts_total * u64::from(n_used) / u64::from(n_expert);
    }
    wb.per_token = wb.dense + wb.experts_active;
    Ok(wb)
}

/// Measured read bandwidth in bytes per second: `threads` threads each summing
/// their share of a 1 GiB buffer, best of 5 passes.
pub fn measure_read_bandwidth(threads: usize) -> f64 {
    const BYTES: usize = 1 << 30;
    let words = BYTES / 8;
    let buf: Vec<u64> = (0..words as u64).collect();
    let threads = threads.max(1);
    let chunk = words.div_ceil(threads);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().fold(0u64, |a, &x| a.wrapping_add(x))))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0u64, u64::wrapping_add)
        });
        std::hint::black_box(total);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    BYTES as f64 / best
}
