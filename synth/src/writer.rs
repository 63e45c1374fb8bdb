//! Streaming a [`ModelSpec`] to a GGUF file in bounded memory.
//!
//! ggml writes the header, metadata and tensor infos
//! (`gguf_write_to_file(.., only_meta = true)`); the file is then read back
//! with `gguf_init_from_file` (metadata only), and each tensor's data is
//! generated chunk by chunk and appended at the offset gguf reports for it
//! (`gguf_get_data_offset` + `gguf_get_tensor_offset`), zero-padded to the
//! alignment exactly as `gguf_write_to_file` would pad it. Memory use is a few
//! chunks (4 MiB of f32 each) per worker thread, whatever the model size.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Result, SynthError};
use crate::gguf::Gguf;
use crate::quant::{AlignedBytes, encode};
use crate::rng::{SplitMix64, chunk_seed, tensor_seed};
use crate::spec::{ModelSpec, TensorSpec};

/// Elements generated per chunk (whole rows; at least one row). Fixed, so the
/// values do not depend on the number of threads.
const CHUNK_ELEMS: usize = 1 << 20;
/// Most worker threads used.
const MAX_WORKERS: usize = 8;

/// What [`write_gguf`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Wall-clock seconds taken.
    pub seconds: f64,
    /// Number of tensors.
    pub tensors: usize,
    /// Number of parameters.
    pub n_params: u64,
}

impl WriteReport {
    /// Throughput in MB/s (10^6 bytes per second).
    #[must_use]
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }
}

impl fmt::Display for WriteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {}: {} bytes ({:.2} GiB), {} tensors, {:.3} B params in {:.2} s ({:.1} MB/s)",
            self.path.display(),
            self.bytes,
            self.bytes as f64 / f64::from(1u32 << 30),
            self.tensors,
            self.n_params as f64 / 1e9,
            self.seconds,
            self.mb_per_s()
        )
    }
}

/// Write `spec` to `path` (replacing it), showing a progress bar on stderr if
/// `progress` is set.
///
/// # Errors
/// I/O errors, ggml refusing the metadata, a layout that differs from what
/// gguf reports, or data ggml's validator rejects.
pub fn write_gguf(spec: &ModelSpec, path: &Path, progress: bool) -> Result<WriteReport> {
    let start = Instant::now();
    // Create it here first so a bad path is reported as an I/O error with the path.
    File::create(path).map_err(|e| SynthError::io(path, e))?;

    let mut ctx = Gguf::empty()?;
    ctx.set_all(&spec.metadata)?;
    ctx.add_tensors(&spec.tensors)?;
    ctx.write_meta(path)?;
    let meta_size = ctx.meta_size();
    drop(ctx);

    let layout = Gguf::read_meta(path)?;
    let layout_err = |detail: String| SynthError::Layout {
        path: path.to_owned(),
        detail,
    };
    let data_offset = layout.data_offset();
    let alignment = layout.alignment().max(1);
    if layout.n_tensors() != spec.tensors.len()
        || data_offset != meta_size
        || !data_offset.is_multiple_of(alignment)
    {
        return Err(layout_err(format!(
            "{} tensors, data at {data_offset} (metadata {meta_size} bytes, alignment {alignment})",
            layout.n_tensors()
        )));
    }

    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SynthError::io(path, e))?;
    let end = file
        .seek(SeekFrom::End(0))
        .map_err(|e| SynthError::io(path, e))?;
    if end != data_offset {
        return Err(layout_err(format!(
            "metadata is {end} bytes, gguf reports data at {data_offset}"
        )));
    }
    let mut out = BufWriter::with_capacity(8 << 20, file);

    let total: u64 = spec
        .tensors
        .iter()
        .map(|t| t.n_bytes().next_multiple_of(alignment))
        .sum();
    let bar = progress_bar(progress, total);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    let mut generator = Generator::new(workers);

    let mut pos = data_offset;
    for (i, t) in spec.tensors.iter().enumerate() {
        let (name, want, size) = (
            layout.tensor_name(i),
            data_offset + layout.tensor_offset(i),
            layout.tensor_size(i),
        );
        if name != t.name || size != t.n_bytes() || want < pos {
            return Err(layout_err(format!(
                "tensor {i}: gguf has {name} ({size} bytes at {want}), expected {} ({} bytes after {pos})",
                t.name,
                t.n_bytes()
            )));
        }
        let pad = write_zeros(&mut out, want - pos, path)?;
        bar.inc(pad);
        pos += pad;
        bar.set_message(t.name.clone());
        pos += generator.write_tensor(t, spec.seed, &mut out, path, &bar)?;
    }
    pos += write_zeros(&mut out, pos.next_multiple_of(alignment) - pos, path)?;
    let file = out
        .into_inner()
        .map_err(|e| SynthError::io(path, e.into_error()))?;
    let len = file.metadata().map_err(|e| SynthError::io(path, e))?.len();
    if len != pos {
        return Err(layout_err(format!(
            "file is {len} bytes, wrote up to {pos}"
        )));
    }
    bar.finish_and_clear();
    Ok(WriteReport {
        path: path.to_owned(),
        bytes: len,
        seconds: start.elapsed().as_secs_f64(),
        tensors: spec.tensors.len(),
        n_params: spec.n_params(),
    })
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template =
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn write_zeros(out: &mut impl Write, n: u64, path: &Path) -> Result<u64> {
    let zeros = [0u8; 4096];
    let mut left = n;
    while left > 0 {
        let k = left.min(zeros.len() as u64) as usize;
        out.write_all(&zeros[..k])
            .map_err(|e| SynthError::io(path, e))?;
        left -= k as u64;
    }
    Ok(n)
}

/// Per-worker buffers, reused across chunks and tensors.
struct Generator {
    slots: Vec<(Vec<f32>, AlignedBytes)>,
}

impl Generator {
    fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers.max(1))
                .map(|_| (Vec::new(), AlignedBytes::default()))
                .collect(),
        }
    }

    /// Generate and write one tensor; returns the bytes written.
    fn write_tensor(
        &mut self,
        t: &TensorSpec,
        seed: u64,
        out: &mut impl Write,
        path: &Path,
        bar: &ProgressBar,
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
                let bytes = b.as_bytes();
                out.write_all(bytes).map_err(|e| SynthError::io(path, e))?;
                written += bytes.len() as u64;
                bar.inc(bytes.len() as u64);
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
        encode(&self.t.name, self.t.ty, values, self.row, out)
    }
}
