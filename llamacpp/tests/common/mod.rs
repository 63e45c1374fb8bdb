//! Shared fixtures: tiny synthetic models written by `llamacpp-synth` (once, cached).
#![allow(dead_code)]

use std::path::PathBuf;

use llamacpp::{Model, ModelParams};
use llamacpp_synth::Preset;

pub mod synth;
pub mod templates;

fn path(preset: Preset) -> PathBuf {
    llamacpp::backend::set_logging(false);
    llamacpp_synth::tiny_model_path(preset)
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

/// The options the cached dense model was written with (for adapters matching it).
pub fn dense_spec() -> llamacpp_synth::ModelSpec {
    llamacpp_synth::ModelSpec::from_options(&llamacpp_synth::SynthOptions::new(Preset::LlamaTiny))
        .expect("dense spec")
}

/// The options the cached qwen3next model was written with.
pub fn qwen3next_spec() -> llamacpp_synth::ModelSpec {
    llamacpp_synth::ModelSpec::from_options(&llamacpp_synth::SynthOptions::new(
        Preset::Qwen3NextTiny,
    ))
    .expect("qwen3next spec")
}

/// Clears the memory, decodes a fixed prompt in sequence 0 and returns the last logits.
pub fn prompt_logits(ctx: &mut llamacpp::Context<'_>) -> Vec<f32> {
    let model = ctx.model();
    let p = model
        .vocab()
        .tokenize("The quick brown fox jumps over the lazy dog", true, false)
        .expect("tokenize");
    ctx.clear_memory(true);
    let mut b = llamacpp::Batch::from_tokens(&p, 0, 0).expect("batch");
    ctx.decode(&mut b).expect("decode");
    ctx.logits(-1).expect("logits").to_vec()
}

/// The control and user-defined tokens of `model` with their texts: what typed text must never
/// turn into (llama.cpp matches user-defined ones even without special-token parsing).
pub fn special_tokens(model: &Model) -> Vec<(llamacpp::Token, String)> {
    let vocab = model.vocab();
    (0..vocab.n_tokens())
        .map(|id| vocab.token(id).unwrap())
        .filter(|&t| vocab.is_control(t) || vocab.is_user_defined(t))
        .map(|t| (t, vocab.text(t).unwrap()))
        .filter(|(_, text)| !text.is_empty())
        .collect()
}

/// How many of `tokens` are control or user-defined tokens.
pub fn count_special(model: &Model, tokens: &[llamacpp::Token]) -> usize {
    let vocab = model.vocab();
    tokens
        .iter()
        .filter(|&&t| vocab.is_control(t) || vocab.is_user_defined(t))
        .count()
}
