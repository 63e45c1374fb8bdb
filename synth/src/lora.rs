//! Random LoRA adapters for a synthetic model, in the GGUF form llama.cpp's
//! adapter loader reads.
//!
//! For each chosen base matrix `W` (ggml shape `[n_in, n_out]`) the adapter has
//! `<name>.lora_a` of shape `[n_in, rank]` and `<name>.lora_b` of shape
//! `[rank, n_out]`; llama.cpp adds `scale * alpha / rank * B(A x)` to `W x`.
//! Both factors are drawn with unit-preserving scales (`A ~ 1/sqrt(n_in)`,
//! `B ~ 1/sqrt(rank)`), so with `alpha = rank` the update is as large as the
//! base projection and changes the logits visibly. Real adapters start with
//! `B = 0`; a test adapter must not.

use std::path::Path;

use crate::error::{Result, SynthError};
use crate::init::Init;
use crate::spec::{ModelSpec, TensorSpec};
use crate::writer::{WriteReport, write_gguf};
use llamacpp_ggml::TensorType;
use llamacpp_ggml::gguf::{MetaValue, Metadata};

/// What adapter [`lora_spec`] describes.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraOptions {
    /// Rank of the update (rows of `A`, columns of `B`), at least 1.
    pub rank: u64,
    /// `adapter.lora.alpha`; the effective scale is `alpha / rank`.
    pub alpha: f32,
    /// Seed the factors derive from (independent of the base model's seed).
    pub seed: u64,
    /// Substrings that select base tensors (`attn_q`, `ffn_down`, ...); empty
    /// selects every 2-D `blk.*.weight` projection (norms, convolutions and the
    /// MoE router excluded).
    pub targets: Vec<String>,
    /// `adapter.alora.invocation_tokens`, written when not empty (an "activated" LoRA).
    pub alora_invocation_tokens: Vec<u32>,
}

impl LoraOptions {
    /// Rank 4, `alpha` 4 (scale 1), seed 7, every projection, no aLoRA tokens.
    #[must_use]
    pub fn new() -> Self {
        Self {
            rank: 4,
            alpha: 4.0,
            seed: 7,
            targets: Vec::new(),
            alora_invocation_tokens: Vec::new(),
        }
    }
}

impl Default for LoraOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether base tensor `t` gets a LoRA pair under `opts`.
fn is_target(t: &TensorSpec, opts: &LoraOptions) -> bool {
    let projection = t.shape.len() == 2
        && t.name.starts_with("blk.")
        && t.name.ends_with(".weight")
        && !t.name.contains("norm")
        && !t.name.contains("conv1d")
        && !t.name.contains("ffn_gate_inp");
    projection && (opts.targets.is_empty() || opts.targets.iter().any(|s| t.name.contains(s)))
}

/// Describe a random LoRA adapter for `base` (metadata and F32 factor tensors).
///
/// # Errors
/// [`SynthError::InvalidOptions`] for rank 0, a non-finite alpha, a rank larger
/// than a target's dimensions, or targets that select no tensor.
///
/// ```
/// use llamacpp_synth::{LoraOptions, ModelSpec, Preset, SynthOptions, lora_spec};
///
/// let base = ModelSpec::from_options(&SynthOptions::new(Preset::LlamaTiny))?;
/// let mut opts = LoraOptions::new();
/// opts.targets = vec!["attn_q".into()];
/// let adapter = lora_spec(&base, &opts)?;
/// assert!(adapter.tensor("blk.0.attn_q.weight.lora_a").is_some());
/// # Ok::<(), llamacpp_synth::SynthError>(())
/// ```
pub fn lora_spec(base: &ModelSpec, opts: &LoraOptions) -> Result<ModelSpec> {
    let bad = |m: String| Err(SynthError::InvalidOptions(m));
    if opts.rank == 0 {
        return bad("LoRA rank must be at least 1".into());
    }
    if !opts.alpha.is_finite() {
        return bad(format!("LoRA alpha {} is not finite", opts.alpha));
    }
    let mut tensors = Vec::new();
    for t in base.tensors.iter().filter(|t| is_target(t, opts)) {
        let (n_in, n_out) = (t.shape[0], t.shape[1]);
        if opts.rank > n_in.min(n_out) {
            return bad(format!(
                "LoRA rank {} exceeds {} ({n_in} x {n_out})",
                opts.rank, t.name
            ));
        }
        tensors.push(TensorSpec {
            name: format!("{}.lora_a", t.name),
            shape: vec![n_in, opts.rank],
            ty: TensorType::F32,
            init: Init::fan_in(n_in),
        });
        tensors.push(TensorSpec {
            name: format!("{}.lora_b", t.name),
            shape: vec![opts.rank, n_out],
            ty: TensorType::F32,
            init: Init::fan_in(opts.rank),
        });
    }
    if tensors.is_empty() {
        return bad(format!(
            "LoRA targets {:?} select no tensor of {}",
            opts.targets, base.arch
        ));
    }
    let mut metadata = Metadata::default();
    metadata.set("general.architecture", MetaValue::Str(base.arch.clone()));
    metadata.set("general.type", MetaValue::Str("adapter".into()));
    metadata.set(
        "general.name",
        MetaValue::Str(format!(
            "{} LoRA (synthetic, rank {}, seed {})",
            base.arch, opts.rank, opts.seed
        )),
    );
    metadata.set("adapter.type", MetaValue::Str("lora".into()));
    metadata.set("adapter.lora.alpha", MetaValue::F32(opts.alpha));
    if !opts.alora_invocation_tokens.is_empty() {
        metadata.set(
            "adapter.alora.invocation_tokens",
            MetaValue::ArrU32(opts.alora_invocation_tokens.clone()),
        );
    }
    Ok(ModelSpec {
        arch: base.arch.clone(),
        n_layer: base.n_layer,
        n_embd: base.n_embd,
        n_vocab: base.n_vocab,
        ftype: base.ftype,
        seed: opts.seed,
        metadata,
        tensors,
    })
}

/// Write a random LoRA adapter for `base` to `path` (see [`lora_spec`]).
///
/// # Errors
/// Those of [`lora_spec`] and [`write_gguf`].
pub fn write_lora(base: &ModelSpec, opts: &LoraOptions, path: &Path) -> Result<WriteReport> {
    write_gguf(&lora_spec(base, opts)?, path, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Preset, SynthOptions};

    fn base() -> ModelSpec {
        ModelSpec::from_options(&SynthOptions::new(Preset::LlamaTiny)).unwrap()
    }

    #[test]
    fn pairs_have_the_shapes_llama_cpp_checks() {
        let base = base();
        let spec = lora_spec(&base, &LoraOptions::new()).unwrap();
        let w = base.tensor("blk.1.ffn_down.weight").unwrap();
        let a = spec.tensor("blk.1.ffn_down.weight.lora_a").unwrap();
        let b = spec.tensor("blk.1.ffn_down.weight.lora_b").unwrap();
        assert_eq!(a.shape[0], w.shape[0]);
        assert_eq!(b.shape[1], w.shape[1]);
        assert_eq!(a.shape[1], b.shape[0]);
        assert!(spec.tensors.iter().all(|t| !t.name.contains("norm")));
        assert!(spec.tensor("token_embd.weight.lora_a").is_none());
    }

    #[test]
    fn bad_options_are_errors() {
        let base = base();
        let mut o = LoraOptions::new();
        o.rank = 0;
        assert!(lora_spec(&base, &o).is_err());
        o.rank = 100_000;
        assert!(lora_spec(&base, &o).is_err());
        let mut o = LoraOptions::new();
        o.targets = vec!["no_such_tensor".into()];
        assert!(lora_spec(&base, &o).is_err());
        o.targets.clear();
        o.alpha = f32::NAN;
        assert!(lora_spec(&base, &o).is_err());
    }
}
