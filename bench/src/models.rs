//! The default benchmark model: synthetic Qwen3-Next-80B-A3B at full width,
//! depth shrunk to 4 layers, Q4_0, generated once and cached.

use std::path::PathBuf;

use crate::{Result, err};

/// Where generated models are cached: `$LLAMA_BENCH_CACHE`, else
/// `$XDG_CACHE_HOME/llama-rs`, else `~/.cache/llama-rs`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LLAMA_BENCH_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("llama-rs")
}

/// The path of the default model, generating it first when it is not cached.
pub fn default_model(layers: u32, ftype: &str) -> Result<PathBuf> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(err)?;
    let path = dir.join(format!("qwen3next-80b-a3b-l{layers}-{ftype}-seed0.gguf"));
    if path.is_file() {
        return Ok(path);
    }
    eprintln!("generating the default model {} (once)...", path.display());
    crate::synth_model(&path, "qwen3next-80b-a3b", Some(layers), ftype)?;
    Ok(path)
}
