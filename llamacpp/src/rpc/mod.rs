//! Splitting a model across machines with ggml-rpc (`rpc` feature).
//!
//! A machine with spare devices runs a server ([`RpcServer`] in a program, or the
//! `llama-rpc-server` binary); a client adds it with [`add_rpc_server`], which returns
//! its devices (`RPC0`, ...), and loads a model whose layers go to them through
//! [`ModelParams::devices`](crate::ModelParams::devices),
//! [`tensor_split`](crate::ModelParams::tensor_split) and
//! [`n_gpu_layers`](crate::ModelParams::n_gpu_layers). Weights travel once, at load;
//! activations at every decode.
//!
//! **Security.** The protocol has no authentication and no encryption, and a server runs
//! whatever graph a client sends: whoever can reach a server's port can run code in its
//! process. Servers listen on loopback unless told otherwise
//! ([`RpcServerConfig::allow_remote`]); use them only on trusted networks.
//!
//! **Builds.** This project's patched ggml-rpc checks what clients send, never aborts a
//! client when a server fails (the load or decode returns [`Error::Rpc`](crate::Error::Rpc)
//! and the context becomes unusable), has timeouts and a stoppable server, and speaks
//! protocol version `0x80 | 7`, so that it never pairs with an upstream build whose ops
//! differ. On the upstream build ([`support`] tells), a server failure aborts the client
//! process, and only [`serve_forever`] can serve.
//!
//! ```no_run
//! use llamacpp::{Context, ContextParams, Model, ModelParams};
//!
//! // On the server machine: `llama-rpc-server --host 10.0.0.2 --allow-remote`.
//! let remote = llamacpp::rpc::add_rpc_server("10.0.0.2:50052")?;
//! let params = ModelParams::default()
//!     .devices(&[remote[0].name.as_str()])?
//!     .n_gpu_layers(20); // the last 20 layers on the server, the rest here
//! let model = Model::load("model.gguf", params)?;
//! let mut ctx = Context::new(&model, ContextParams::default())?;
//! # let tokens = [];
//! ctx.decode_tokens(&tokens)?;
//! # Ok::<(), llamacpp::Error>(())
//! ```

mod client;
mod endpoint;
mod health;
mod probe;
mod raw;
mod server;

pub use client::{ClientOptions, add_rpc_server, add_rpc_server_with};
pub use endpoint::Endpoint;
pub(crate) use health::{check_after_run, check_endpoints, model_endpoints};
pub use probe::{ServerInfo, probe};
pub use server::{RpcServer, RpcServerConfig, serve_forever};

/// What the linked ggml-rpc can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcSupport {
    /// Whether the library was built with the RPC backend at all.
    pub available: bool,
    /// The protocol version it speaks and expects (major, minor, patch): `(135, 0, 0)` on
    /// this project's patched build, `(7, 0, 0)` upstream.
    pub wire_version: (u8, u8, u8),
    /// Failed connections become errors (patched) rather than process aborts (upstream).
    pub detects_failures: bool,
    /// [`ClientOptions::io_timeout`] takes effect (patched).
    pub timeouts: bool,
    /// [`RpcServer`] works (patched); otherwise only [`serve_forever`].
    pub stoppable_server: bool,
}

/// What the linked ggml-rpc can do (read from the library at run time).
///
/// ```
/// let support = llamacpp::rpc::support();
/// assert!(support.available);
/// assert_eq!(support.wire_version.0 & 0x7f, 7);
/// ```
pub fn support() -> RpcSupport {
    RpcSupport {
        available: raw::available(),
        wire_version: raw::wire_version(),
        detects_failures: raw::detects_failures(),
        timeouts: raw::has_timeouts(),
        stoppable_server: raw::stoppable_server(),
    }
}
