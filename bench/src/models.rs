//! The default benchmark model: synthetic Qwen3-Next-80B-A3B at full width,
//! depth shrunk (4 layers by default), Q4_0, generated once and cached by
//! `llamacpp-synth` (in `$LLAMACPP_SYNTH_CACHE`, default a temp-dir cache).

use std::path::PathBuf;

use llamacpp_synth::{FileType, Preset, SynthOptions, Vocab};

use crate::{Result, err};

/// Options of the default model with `layers` layers of type `ftype`.
pub fn default_options(layers: u32, ftype: FileType) -> SynthOptions {
    let mut o = SynthOptions::new(Preset::Qwen3Next80bA3b);
    o.layers = Some(layers);
    o.ftype = ftype;
    // Benchmarks need the real vocabulary size, not a tokenizer.
    o.vocab = Vocab::None { size: 151_936 };
    o
}

/// The path of a cached synthetic model, generating it first when needed.
pub fn cached(opts: &SynthOptions) -> Result<PathBuf> {
    eprintln!(
        "model: synthetic {} ({} layers, {}), cached after the first run",
        opts.preset,
        opts.layers.unwrap_or(0),
        opts.ftype
    );
    llamacpp_synth::cached_model(opts).map_err(err)
}

/// The default model's path.
pub fn default_model() -> Result<PathBuf> {
    cached(&default_options(4, FileType::Q4_0))
}
