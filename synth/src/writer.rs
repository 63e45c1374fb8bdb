//! Streaming a [`ModelSpec`] to a GGUF file in bounded memory.
//!
//! ggml writes the header, metadata and tensor infos
//! (`gguf_write_to_file(.., only_meta = true)`); the file is then read back
//! with `gguf_init_from_file` (metadata only), and each tensor's data is
//! generated chunk by chunk and appended at the offset gguf reports for it
//! (`gguf_get_data_offset` + `gguf_get_tensor_offset`), zero-padded to the
//! alignment exactly as `gguf_write_to_file` would pad it. Memory use is one
//! chunk per worker thread (see [`crate::generate`]), whatever the model size.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Result, SynthError};
use crate::generate::Generator;
use crate::spec::ModelSpec;
use llamacpp_ggml::gguf::Gguf;

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
        let (size, unit) = if self.bytes >= 1 << 30 {
            (self.bytes as f64 / f64::from(1u32 << 30), "GiB")
        } else {
            (self.bytes as f64 / f64::from(1u32 << 20), "MiB")
        };
        let (params, punit) = if self.n_params >= 1_000_000_000 {
            (self.n_params as f64 / 1e9, "B")
        } else {
            (self.n_params as f64 / 1e6, "M")
        };
        write!(
            f,
            "wrote {}: {} bytes ({size:.2} {unit}), {} tensors, {params:.2} {punit} params in {:.2} s ({:.1} MB/s)",
            self.path.display(),
            self.bytes,
            self.tensors,
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
    ctx.add_tensors(&spec.tensor_infos())?;
    ctx.write_meta(path)?;
    let meta_size = ctx.meta_size();
    drop(ctx);

    let layout = Gguf::open(path)?;
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
    let mut generator = Generator::new();

    let mut pos = data_offset;
    for (i, t) in spec.tensors.iter().enumerate() {
        let (name, want, size) = (
            layout.tensor_name(i).unwrap_or_default(),
            data_offset + layout.tensor_offset(i).unwrap_or(0),
            layout.tensor_size(i).unwrap_or(0),
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
        pos += generator.tensor(t, spec.seed, |bytes| {
            out.write_all(bytes).map_err(|e| SynthError::io(path, e))?;
            bar.inc(bytes.len() as u64);
            Ok(())
        })?;
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
