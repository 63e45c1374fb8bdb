//! Safe Rust API for llama.cpp, built by `llamacpp-sys` from a pinned source with
//! this workspace's patch series applied.
//!
//! No safe call can abort the process or touch memory it should not: every C
//! precondition is checked first and reported as an [`Error`].
//!
//! ```no_run
//! use llamacpp::{Batch, Context, ContextParams, Model, ModelParams, SamplerChain};
//!
//! # fn main() -> llamacpp::Result<()> {
//! let model = Model::load("model.gguf", ModelParams::default())?;
//! let mut ctx = Context::new(&model, ContextParams::default().n_ctx(2048))?;
//! let vocab = model.vocab();
//! let prompt = vocab.tokenize("Hello", true, false)?;
//! let mut batch = Batch::from_tokens(&prompt, 0, 0)?;
//! ctx.decode(&mut batch)?;
//! let mut sampler = SamplerChain::builder(vocab).greedy().build()?;
//! let next = sampler.sample(&mut ctx, -1)?;
//! println!("{}", vocab.piece(next, false)?);
//! # Ok(()) }
//! ```

pub mod backend;
mod batch;
mod candidates;
pub mod chat;
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
mod params;
mod sampler;
mod vocab;

pub use batch::Batch;
pub use candidates::{TokenData, TokenDataArray};
pub use context::{Context, Perf};
pub use custom_sampler::CustomSampler;
pub use error::{Error, Result};
pub use lora::LoraAdapter;
pub use model::{Model, ModelParams};
pub use model_params::{
    KV_OVERRIDE_MAX_LEN, KvOverride, LazyMode, LoadMode, SplitMode, max_devices,
};
pub use params::{
    AttentionType, CacheType, ContextParams, FlashAttn, GraphNode, Pooling, RopeScaling, SrcInfo,
    ThreadPoolOptions,
};
pub use sampler::{SamplerBuilder, SamplerChain};
pub use vocab::{Token, Utf8Decoder, Vocab};

/// What the linked llama.cpp is: upstream version, variant and applied patches.
pub use llamacpp_sys::build_info;
