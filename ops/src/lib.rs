//! Op-level tests and timings of ggml kernels, in the spirit of upstream's
//! `test-backend-ops` (which the vendored tree does not carry).
//!
//! Each op is built as a one-node ggml graph with the ggml / ggml-backend C API (through
//! `llamacpp-sys`, by one shared builder that owns the contexts, buffers and backend), computed
//! on a backend device ([`Device`]: the CPU, or any other device this build registers, such as
//! Vulkan), and compared with a reference computed in Rust by normalised mean squared error
//! ([`nmse`]). Inputs may be strided or offset views of larger tensors ([`view::View`]). What
//! the linked build can do beyond upstream comes from the patches' declared [`capability`]s.
//! The timings are a criterion bench: `cargo bench -p llamacpp-ops --bench ops -- <filter>`
//! (filters: `binary`, `concat`, `mul_mat_id`, `ssm_conv`, `sum_rows`).
//!
//! A device whose `supports_op` rejects the node gives [`Error::DeviceUnsupported`] instead of a
//! result. Weights can be placed in the CPU's `CPU_REPACK` buffer type
//! ([`BufferType::cpu_repack`]) so that the repacked kernels run, as they do when llama.cpp
//! loads a model.
//!
//! ```no_run
//! use llamacpp_ops::mul_mat_id::{Inputs, MulMatId, Routing, Shape, Src1Layout, reference};
//! use llamacpp_ops::{BufferType, MATMUL_NMSE_THRESHOLD, TensorType, nmse};
//!
//! let ty = TensorType::Q4_0;
//! let shape = Shape { k: 256, m: 32, n_expert: 8, n_used: 2, n_tokens: 16 };
//! let layout = Src1Layout::Broadcast;
//! let inputs = Inputs::random(ty, shape, layout, Routing::Uniform, None, 1)?;
//! let op = MulMatId::new(ty, shape, layout, &inputs, BufferType::cpu_repack().unwrap(), 2)?;
//! assert!(op.weight_repacked());
//! op.compute()?;
//! let err = nmse(&op.output(), &reference(ty, shape, layout, &inputs)?);
//! assert!(err < MATMUL_NMSE_THRESHOLD);
//! # Ok::<(), llamacpp_ops::Error>(())
//! ```

pub mod binary;
pub mod capability;
pub mod concat;
pub mod device;
pub mod gated_delta_net;
pub mod ggml;
mod graph;
pub mod harness;
pub mod mul_mat_id;
pub mod ssm_conv;
pub mod sum_rows;
pub mod unary;
pub mod view;

pub use device::Device;
pub use ggml::{BufferType, REPACK_BUFFER_NAME};
/// The storage types of the op tests' weights, from the shared ggml layer.
pub use llamacpp_ggml::TensorType;

/// Upstream's tolerance for matrix multiplications in `test-backend-ops` (`max_nmse_err`
/// of `test_mul_mat` and `test_mul_mat_id`): quantizing the activations to 8 bits is the
/// expected error, a wrong row or column is far above it.
pub const MATMUL_NMSE_THRESHOLD: f64 = 5e-4;

/// Upstream's default tolerance in `test-backend-ops` (`max_nmse_err`), for ops other than
/// matrix multiplications.
pub const NMSE_THRESHOLD: f64 = 1e-7;

/// What can go wrong building or running an op.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ggml call returned null or failed.
    #[error("ggml: {0}")]
    Ggml(&'static str),
    /// Inputs that do not fit the op's shape.
    #[error("shape: {0}")]
    Shape(String),
    /// Something this build of ggml cannot do.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A node of the graph that the device's `supports_op` rejects: a graph scheduler would
    /// run it elsewhere (on the CPU), so the op is not computed on this device.
    #[error("{device} does not support {op}")]
    DeviceUnsupported {
        /// The device's name.
        device: String,
        /// The rejected node's op.
        op: String,
    },
}

/// The shared error measure (`Σ (out - ref)² / Σ ref²`, infinity on a NaN), from the
/// thin ggml layer so that op tests, model tests and the bench agree on it.
pub use llamacpp_ggml::nmse;
