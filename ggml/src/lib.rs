//! The thin ggml layer the llamacpp crates share, so that each fact lives once:
//!
//! - [`TensorType`]: the storage types the project writes, with ggml's value, name and
//!   row layout (feature `ffi`, the default);
//! - [`encode`] and [`decode`]: f32 rows to a storage type and back with ggml's own
//!   quantizers and converters, refusing the lengths ggml would abort on (feature `ffi`);
//! - [`gguf::Gguf`]: one owning reader and writer of GGUF metadata and tensor infos, over
//!   ggml's own parser behind the sys crate's exception boundary (feature `ffi`);
//! - [`rng::SplitMix64`]: the seeded generator behind synthetic weights and op test data;
//! - [`nmse`] and [`max_abs_diff`]: the error measure of op tests, model tests and the
//!   bench's logit check.
//!
//! Without the `ffi` feature the crate is pure Rust (the bench's data layer uses it so).
#![cfg_attr(not(feature = "ffi"), forbid(unsafe_code))]

mod compare;
pub mod rng;

pub use compare::{max_abs_diff, nmse};
pub use rng::SplitMix64;

#[cfg(feature = "ffi")]
mod error;
#[cfg(feature = "ffi")]
pub mod gguf;
#[cfg(feature = "ffi")]
mod quant;
#[cfg(feature = "ffi")]
mod types;

#[cfg(feature = "ffi")]
pub use error::{Error, Result};
#[cfg(feature = "ffi")]
pub use quant::{AlignedBytes, decode, encode};
#[cfg(feature = "ffi")]
pub use types::TensorType;
