//! Shared by the examples: `-m MODEL`, or a tiny synthetic model generated once.
#![allow(dead_code)]

use std::path::PathBuf;

/// The model path from `-m PATH`, else a tiny synthetic model of `fallback`.
pub fn model_path(fallback: llamacpp_synth::Preset) -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "-m" || a == "--model")
        && let Some(p) = args.get(i + 1)
    {
        return PathBuf::from(p);
    }
    eprintln!(
        "no -m MODEL given: using a tiny synthetic {fallback} model (random weights, so the text is noise)"
    );
    match llamacpp_synth::cached_model(&llamacpp_synth::SynthOptions::new(fallback)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot write the synthetic model: {e}");
            std::process::exit(1)
        }
    }
}

/// The value after `flag`, if given.
pub fn arg(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}
