//! Memory-bandwidth roofline for generation: bytes a decode step must read,
//! and the machine's measured read bandwidth (`llama-bench membw`).

use std::time::Instant;

use llamacpp_synth::GgufLayout;

use crate::Result;

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
    let layout = llamacpp_synth::read_layout(std::path::Path::new(path))
        .map_err(|e| format!("{path}: not a readable GGUF file ({e})"))?;
    Ok(weight_bytes_of(&layout))
}

/// The weights one token reads, from a file's tensor list and expert counts.
fn weight_bytes_of(layout: &GgufLayout) -> WeightBytes {
    let mut wb = WeightBytes::default();
    for (name, _, _, size) in &layout.tensors {
        if name.starts_with("token_embd") {
            continue;
        }
        if name.contains("_exps") {
            wb.experts_total += size;
        } else {
            wb.dense += size;
        }
    }
    if let Some((n_expert, n_used)) = layout.experts.filter(|(n, _)| *n > 0) {
        wb.experts_active = wb.experts_total * u64::from(n_used) / u64::from(n_expert);
    }
    wb.per_token = wb.dense + wb.experts_active;
    wb
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_the_dense_weights_and_its_share_of_the_experts() {
        let t = |name: &str, size| (name.to_string(), 0, 0, size);
        let layout = GgufLayout {
            data_offset: 0,
            alignment: 32,
            tensors: vec![
                t("token_embd.weight", 1000),
                t("blk.0.attn_q.weight", 100),
                t("blk.0.ffn_up_exps.weight", 800),
                t("output.weight", 50),
            ],
            arch: Some("qwen3moe".into()),
            experts: Some((8, 2)),
        };
        let wb = weight_bytes_of(&layout);
        assert_eq!(
            (wb.dense, wb.experts_total, wb.experts_active),
            (150, 800, 200)
        );
        assert_eq!(wb.per_token, 350);
        let dense = GgufLayout {
            experts: None,
            ..layout
        };
        // Without expert counts no expert is known to be read (as llama.cpp would refuse the file).
        assert_eq!(weight_bytes_of(&dense).per_token, 150);
    }
}
