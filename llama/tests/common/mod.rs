//! Shared fixtures: tiny synthetic models written by `llama-synth` (once, cached).
#![allow(dead_code)]

use std::path::PathBuf;

use llama::{Model, ModelParams};
use llama_synth::Preset;

fn path(preset: Preset) -> PathBuf {
    llama::backend::set_logging(false);
    llama_synth::tiny_model_path(preset)
}

/// A dense llama (GQA) with the BPE vocabulary and a ChatML template.
pub fn dense_path() -> PathBuf {
    path(Preset::LlamaTiny)
}

/// A tiny qwen3next (hybrid: linear and full attention, routed and shared experts).
pub fn qwen3next_path() -> PathBuf {
    path(Preset::Qwen3NextTiny)
}

pub fn dense() -> Model {
    Model::load(dense_path(), ModelParams::default()).expect("load dense model")
}

pub fn qwen3next() -> Model {
    Model::load(qwen3next_path(), ModelParams::default()).expect("load qwen3next model")
}
