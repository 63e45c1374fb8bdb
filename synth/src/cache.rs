//! Writing a model once and reusing it: for tests and examples.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, SynthError};
use crate::spec::{ModelSpec, Preset, SynthOptions};
use crate::writer::write_gguf;
use llamacpp_ggml::rng::fnv1a64;

/// Bump when the generator's output changes for the same options.
const GENERATOR_VERSION: u32 = 1;

/// Serialises cache writes within one process (tests run in threads).
static LOCK: Mutex<()> = Mutex::new(());
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory cached models live in: `$LLAMACPP_SYNTH_CACHE` if set, else
/// `<temp dir>/llamacpp-synth-cache`.
#[must_use]
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LLAMACPP_SYNTH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("llamacpp-synth-cache"))
}

/// The cached file for `opts`, written on first use.
///
/// The name is a hash of the options and the generator version. A new file is
/// written to a temporary name in the same directory and renamed into place,
/// so readers never see a partial file, even across processes.
///
/// # Errors
/// Invalid options, or any error of [`write_gguf`].
pub fn cached_model(opts: &SynthOptions) -> Result<PathBuf> {
    let dir = cache_dir();
    let key = fnv1a64(format!("v{GENERATOR_VERSION}|{}", opts.fingerprint()).as_bytes());
    let path = dir.join(format!("{}-{key:016x}.gguf", opts.preset));
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if path.is_file() {
        return Ok(path);
    }
    let spec = ModelSpec::from_options(opts)?;
    std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        key,
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_gguf(&spec, &tmp, false).and_then(|_| rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| SynthError::io(to, e))
}

/// Path of `preset` with default options ([`SynthOptions::new`]), written into
/// the cache on first use. Meant for tests and examples with the tiny presets.
///
/// # Panics
/// If the model cannot be written (for example, the cache directory is not
/// writable); use [`cached_model`] to handle the error.
#[must_use]
pub fn tiny_model_path(preset: Preset) -> PathBuf {
    match cached_model(&SynthOptions::new(preset)) {
        Ok(p) => p,
        Err(e) => panic!("llamacpp-synth: cannot write the {preset} model: {e}"),
    }
}
