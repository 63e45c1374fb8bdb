//! Random-weight GGUF models that llama.cpp loads exactly like real conversions.
//!
//! A [`Preset`] names a model shape (Qwen3-Next-80B-A3B at true width, or tiny
//! qwen3next / qwen35moe / qwen3moe / llama models for tests);
//! [`SynthOptions`] adds depth, tensor type, seed, vocabulary and tensor
//! layout; [`ModelSpec::from_options`] lists the metadata and tensors; and
//! [`write_gguf`] streams the file through ggml's own GGUF writer, generating
//! and quantizing each tensor on the fly in bounded memory.
//!
//! Values are a pure function of the seed and the tensor name, so the same
//! options always give the same bytes. Weights are `N(0, 1/sqrt(fan_in))`, norm
//! weights near 1, `ssm_a` negative, the `ssm_dt` bias small, so activations stay
//! finite and MoE routing stays spread out. The tokenizer is a real byte-level
//! BPE vocabulary with ChatML control tokens and template, or `no_vocab` for
//! benchmarks.
//!
//! ```no_run
//! use llamacpp_synth::{FileType, ModelSpec, Preset, SynthOptions, write_gguf};
//!
//! let mut opts = SynthOptions::new(Preset::Qwen3Next80bA3b);
//! opts.layers = Some(4);
//! opts.ftype = FileType::Q4_0;
//! let spec = ModelSpec::from_options(&opts)?;
//! let report = write_gguf(&spec, "m.gguf".as_ref(), true)?;
//! println!("{report}");
//! # Ok::<(), llamacpp_synth::SynthError>(())
//! ```
//!
//! [`write_lora`] writes a random LoRA adapter for a model spec (see [`LoraOptions`]).
//!
//! For tests, [`tiny_model_path`] writes a preset once into a cache directory
//! and returns its path. [`ModelSpec::metadata_gguf`] and [`InMemoryFill`] give what
//! `llamacpp::Model::from_metadata` (llama.cpp's `llama_model_init_from_user`) needs to
//! build the same model in memory, without writing a file.
// Every ggml call goes through the shared layer (llamacpp-ggml): none is made here.
#![forbid(unsafe_code)]

mod cache;
pub mod cli;
mod error;
mod generate;
mod init;
mod lora;
mod memory;
pub mod spec;
mod types;

/// The seeded generator, from the shared ggml layer (kept here for the callers that name it so).
pub use llamacpp_ggml::rng;
pub mod vocab;
mod writer;

pub use cache::{cache_dir, cached_model, tiny_model_path};
pub use error::{Result, SynthError};
pub use init::Init;
pub use llamacpp_ggml::TensorType;
pub use llamacpp_ggml::gguf::{GgufLayout, read_layout};
pub use llamacpp_ggml::gguf::{MetaValue, Metadata};
pub use lora::{LoraOptions, lora_spec, write_lora};
pub use memory::InMemoryFill;
pub use spec::{
    DEFAULT_SEED, LinearLayout, ModelSpec, Preset, SynthOptions, TensorSpec, storage_type,
};
pub use types::FileType;
pub use vocab::Vocab;
pub use writer::{WriteReport, write_gguf};
