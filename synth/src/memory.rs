//! Building a model in memory, without a file: the same metadata and the same tensor
//! values as [`crate::write_gguf`] would write, for `llamacpp::Model::from_metadata`
//! (llama.cpp's `llama_model_init_from_user`). [`ModelSpec::metadata_gguf`] gives the
//! metadata and tensor infos, [`InMemoryFill`] the values of each tensor llama.cpp asks for,
//! through a sink that writes bytes at an offset; this crate stays independent of the safe
//! crate.
//!
//! Without a file, llama.cpp's loader creates every tensor the architecture
//! can have, optional ones included (biases, weight scales, `rope_freqs`,
//! `ssm_in` next to `attn_qkv`), prefers the fused `ffn_gate_up_exps` where the
//! architecture has it, and skips the fused full-attention `attn_qkv`. So for
//! qwen3next and qwen35moe only the current linear-attention layout with fused
//! experts can be built this way (the spec must say so; values are not
//! rearranged), and a spec tensor llama.cpp did not ask for is an error
//! ([`InMemoryFill::finish`]). Tensors the spec does not list are filled with their neutral
//! value: one for per-tensor weight scales and RoPE frequency factors, zero
//! for everything else (biases, the unused `ssm_in`).

use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use crate::error::{Result, SynthError};
use crate::generate::Generator;
use crate::spec::{LinearLayout, ModelSpec, TensorSpec};
use llamacpp_ggml::TensorType;
use llamacpp_ggml::gguf::Gguf;

/// Bytes of neutral values written per call of the sink.
const NEUTRAL_CHUNK: usize = 1 << 20;

impl ModelSpec {
    /// The model's metadata and tensor infos (which give llama.cpp the tensor types) in a
    /// GGUF context, for building the model in memory (see [`InMemoryFill`]).
    ///
    /// # Errors
    /// ggml errors (a NUL in a string, a tensor info ggml would refuse).
    pub fn metadata_gguf(&self) -> Result<Gguf> {
        let mut ctx = Gguf::empty()?;
        ctx.set_all(&self.metadata)?;
        ctx.add_tensors(&self.tensor_infos())?;
        Ok(ctx)
    }
}

/// The values of a [`ModelSpec`]'s tensors, for the tensors llama.cpp creates when it builds
/// the model in memory.
///
/// Without a file, llama.cpp creates every tensor the architecture can have, optional ones
/// included (biases, weight scales, `rope_freqs`, `ssm_in` next to `attn_qkv`), prefers the
/// fused `ffn_gate_up_exps` where the architecture has it, and skips the fused
/// full-attention `attn_qkv`. So for qwen3next and qwen35moe only the current
/// linear-attention layout with fused experts can be built this way. Tensors the spec does
/// not list get their neutral value: one for per-tensor weight scales and RoPE frequency
/// factors, zero for everything else.
///
/// `llamacpp::Model::from_metadata` shows it at work: for each tensor llama.cpp hands over,
/// [`InMemoryFill::fill`] gets its name, type and size and writes the values through the
/// tensor's `write`; [`InMemoryFill::finish`] then checks that no spec tensor was left out.
pub struct InMemoryFill<'s> {
    spec: &'s ModelSpec,
    by_name: HashMap<&'s str, &'s TensorSpec>,
    filled: HashSet<&'s str>,
    generator: Generator,
}

impl std::fmt::Debug for InMemoryFill<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryFill")
            .field("arch", &self.spec.arch)
            .field("filled", &self.filled.len())
            .field("tensors", &self.spec.tensors.len())
            .finish()
    }
}

impl<'s> InMemoryFill<'s> {
    /// The values of `spec`'s tensors.
    ///
    /// # Errors
    /// [`SynthError::InvalidOptions`] for the layouts only a file can carry (see
    /// [`InMemoryFill`]).
    pub fn new(spec: &'s ModelSpec) -> Result<Self> {
        let fused = matches!(spec.arch.as_str(), "qwen3next" | "qwen35moe");
        let file_only = |n: &str| n.contains(".ssm_in.") || (fused && n.contains("ffn_gate_exps"));
        if let Some(t) = spec.tensors.iter().find(|t| file_only(&t.name)) {
            return Err(SynthError::InvalidOptions(format!(
                "{} can only be loaded from a file; in memory {} needs the {} layout and fused experts",
                t.name,
                spec.arch,
                LinearLayout::Current
            )));
        }
        Ok(InMemoryFill {
            spec,
            by_name: spec.tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
            filled: HashSet::new(),
            generator: Generator::new(),
        })
    }

    /// Writes the values of the tensor `name` that llama.cpp created with type `ty` (`None`
    /// for a type [`TensorType`] does not name) and `n_bytes` bytes: the spec's generated
    /// values, or the neutral value for a tensor the spec lacks. `sink(offset, bytes)`
    /// writes `bytes` at `offset` into the tensor; it is called with consecutive ranges
    /// that cover all `n_bytes`.
    ///
    /// # Errors
    /// [`SynthError::Layout`] when the spec's tensor has another size, [`SynthError::Ggml`]
    /// for a tensor that should hold ones but is not `F32`, or the sink's error.
    pub fn fill<E: Display>(
        &mut self,
        name: &str,
        ty: Option<TensorType>,
        n_bytes: usize,
        mut sink: impl FnMut(usize, &[u8]) -> std::result::Result<(), E>,
    ) -> Result<()> {
        let mut offset = 0usize;
        let mut emit = |bytes: &[u8]| -> Result<()> {
            sink(offset, bytes).map_err(|e| SynthError::Ggml(format!("{name}: {e}")))?;
            offset += bytes.len();
            Ok(())
        };
        let Some(&t) = self.by_name.get(name) else {
            let value = if is_multiplicative(name) { 1.0f32 } else { 0.0 };
            if value != 0.0 && ty != Some(TensorType::F32) {
                return Err(SynthError::Ggml(format!(
                    "{name}: expected an F32 tensor to fill with {value}"
                )));
            }
            let chunk: Vec<u8> = std::iter::repeat_n(value.to_le_bytes(), NEUTRAL_CHUNK / 4)
                .flatten()
                .collect();
            let mut left = n_bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                emit(&chunk[..n])?;
                left -= n;
            }
            return Ok(());
        };
        if t.n_bytes() != n_bytes as u64 {
            return Err(SynthError::Layout {
                path: "<memory>".into(),
                detail: format!(
                    "{name}: llama.cpp allocated {n_bytes} bytes, the spec has {}",
                    t.n_bytes()
                ),
            });
        }
        self.filled.insert(t.name.as_str());
        self.generator.tensor(t, self.spec.seed, emit)?;
        Ok(())
    }

    /// Checks that llama.cpp asked for every tensor of the spec (call it once the model is
    /// built).
    ///
    /// # Errors
    /// [`SynthError::InvalidOptions`] naming a spec tensor llama.cpp did not create.
    pub fn finish(&self) -> Result<()> {
        match self
            .spec
            .tensors
            .iter()
            .find(|t| !self.filled.contains(t.name.as_str()))
        {
            Some(t) => Err(SynthError::InvalidOptions(format!(
                "llama.cpp did not create {} when building {} in memory",
                t.name, self.spec.arch
            ))),
            None => Ok(()),
        }
    }
}

/// Optional tensors llama.cpp multiplies by (per-tensor weight scales, RoPE
/// frequency factors): their neutral value is 1; every other optional tensor
/// (biases, unused alternative projections) is neutral at 0.
fn is_multiplicative(name: &str) -> bool {
    name.ends_with(".scale")
        || name.ends_with(".input_scale")
        || name.contains("rope_freqs")
        || name.contains("rope_factors")
}
