#![doc = include_str!("../README.md")]

pub mod backend;
mod batch;
mod candidates;
pub mod chat;
mod checkpoint;
mod context;
mod control_vector;
mod custom_sampler;
mod error;
pub mod generate;
pub mod grammar;
mod lora;
mod memory;
mod model;
mod model_check;
mod model_params;
pub mod mtp;
mod panic;
mod params;
mod probe;
pub mod prompt_cache;
mod raw;
#[cfg(feature = "rpc")]
pub mod rpc;
mod sampler;
pub mod speculative;
mod state_file;
#[cfg(feature = "tokio")]
pub mod stream;
mod vocab;

pub use batch::Batch;
pub use candidates::{TokenData, TokenDataArray};
pub use checkpoint::SeqCheckpoint;
pub use context::{Context, Perf};
pub use custom_sampler::CustomSampler;
pub use error::{Error, Result};
pub use lora::LoraAdapter;
pub use model::{Model, ModelParams, TensorData};
pub use model_params::{
    KV_OVERRIDE_MAX_LEN, KvOverride, LazyMode, LoadMode, SplitMode, max_devices,
};
pub use params::{
    AttentionType, CacheType, ContextParams, FlashAttn, GraphNode, Pooling, RopeScaling, SrcInfo,
    ThreadPoolOptions,
};
pub use probe::{ProbeFailure, ProbeOptions, ProbeReport};
pub use sampler::{SamplerBuilder, SamplerChain};
pub use vocab::{Token, Utf8Decoder, Vocab};

/// The shared GGUF and ggml-type layer this crate's API takes: [`Model::from_metadata`] takes
/// a [`llamacpp_ggml::gguf::Gguf`], [`TensorData::tensor_type`] gives a
/// [`llamacpp_ggml::TensorType`].
pub use llamacpp_ggml;
/// What the linked llama.cpp is: upstream version, variant and applied patches.
pub use llamacpp_sys::build_info;
