//! Tensor values: each tensor is generated in fixed-size chunks of whole
//! rows, each chunk from its own seed (derived from the model seed, the tensor
//! name and the chunk index), filled with the tensor's distribution and encoded
//! to its storage type. Chunks are spread over worker threads, but the values
//! depend only on the seeds, never on the thread count or the order.

use crate::error::{Result, SynthError};
use crate::spec::TensorSpec;
use llamacpp_ggml::rng::{SplitMix64, chunk_seed, tensor_seed};
use llamacpp_ggml::{AlignedBytes, encode};

/// Elements generated per chunk (whole rows; at least one row). Fixed, so the
/// values do not depend on the number of threads.
const CHUNK_ELEMS: usize = 1 << 20;
/// Most worker threads used.
const MAX_WORKERS: usize = 8;

/// Per-worker buffers, reused across chunks and tensors.
pub(crate) struct Generator {
    slots: Vec<(Vec<f32>, AlignedBytes)>,
}

impl Generator {
    /// Buffers for one worker per available core (at most [`MAX_WORKERS`]).
    pub fn new() -> Self {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_WORKERS);
        Self {
            slots: (0..workers)
                .map(|_| (Vec::new(), AlignedBytes::default()))
                .collect(),
        }
    }

    /// Generate tensor `t` of a model seeded with `seed`, passing its encoded
    /// bytes to `emit` in order, one chunk at a time. Returns the byte count.
    pub fn tensor(
        &mut self,
        t: &TensorSpec,
        seed: u64,
        mut emit: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let row = t.row_len() as usize;
        let rows = t.n_rows() as usize;
        let rows_per_chunk = (CHUNK_ELEMS / row).max(1);
        let n_chunks = rows.div_ceil(rows_per_chunk);
        let tseed = tensor_seed(seed, &t.name);
        let job = Job {
            t,
            tseed,
            row,
            rows,
            rows_per_chunk,
        };
        let mut written = 0u64;
        let mut next = 0;
        while next < n_chunks {
            let batch = (n_chunks - next).min(self.slots.len());
            let slots = &mut self.slots[..batch];
            if batch == 1 {
                let (f, b) = &mut slots[0];
                job.chunk(next, f, b)?;
            } else {
                std::thread::scope(|s| {
                    let handles: Vec<_> = slots
                        .iter_mut()
                        .enumerate()
                        .map(|(k, (f, b))| {
                            let job = &job;
                            s.spawn(move || job.chunk(next + k, f, b))
                        })
                        .collect();
                    handles.into_iter().try_for_each(|h| {
                        h.join().map_err(|_| {
                            SynthError::Ggml(format!("{}: a worker thread panicked", t.name))
                        })?
                    })
                })?;
            }
            for (_, b) in slots.iter() {
                emit(b.as_bytes())?;
                written += b.as_bytes().len() as u64;
            }
            next += batch;
        }
        Ok(written)
    }
}

/// One tensor being generated.
struct Job<'a> {
    t: &'a TensorSpec,
    tseed: u64,
    row: usize,
    rows: usize,
    rows_per_chunk: usize,
}

impl Job<'_> {
    /// Values of chunk `idx`, encoded into `out`.
    fn chunk(&self, idx: usize, values: &mut Vec<f32>, out: &mut AlignedBytes) -> Result<()> {
        let first = idx * self.rows_per_chunk;
        let n = self.rows_per_chunk.min(self.rows - first) * self.row;
        values.clear();
        values.resize(n, 0.0);
        let mut rng = SplitMix64::new(chunk_seed(self.tseed, idx as u64));
        self.t.init.fill(&mut rng, values);
        encode(self.t.ty, values, self.row, out).map_err(|e| match e {
            llamacpp_ggml::Error::InvalidData(ty) => SynthError::InvalidData {
                tensor: self.t.name.clone(),
                ty,
            },
            other => SynthError::Ggml(format!("{}: {other}", self.t.name)),
        })
    }
}
