//! [`add_rpc_server`]: make a server's devices usable by this process's models.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Endpoint, probe, raw};
use crate::backend::{self, Device};
use crate::error::{Error, Result, c_string};

/// How [`add_rpc_server_with`] connects.
///
/// ```
/// use std::time::Duration;
///
/// let options = llamacpp::rpc::ClientOptions::default()
///     .connect_timeout(Duration::from_secs(2))
///     .io_timeout(Some(Duration::from_secs(60)));
/// assert_eq!(options.connect_timeout, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long the pre-flight [`probe`](super::probe) (connect, HELLO, DEVICE_COUNT) may
    /// take. Default 5 s.
    pub connect_timeout: Duration,
    /// The send/receive timeout of the connections llama.cpp then opens (patched build
    /// only; upstream has none). `None`: wait forever. Default 300 s. A server computes a
    /// whole graph before it answers the next request, so this must exceed the longest
    /// compute of one micro-batch on the server. ggml keeps one process-wide value: the
    /// last call's applies to every connection opened after it.
    pub io_timeout: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Some(Duration::from_secs(300)),
        }
    }
}

impl ClientOptions {
    /// Sets [`ClientOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ClientOptions::io_timeout`].
    pub fn io_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.io_timeout = timeout;
        self
    }
}

/// Endpoints added by this process and their devices as described when added (ggml caches
/// the registry per endpoint forever and has no unregister, so neither does this).
static ADDED: Mutex<BTreeMap<String, Vec<Device>>> = Mutex::new(BTreeMap::new());

/// Adds the ggml-rpc server at `endpoint` (`host:port`) with [`ClientOptions::default`];
/// see [`add_rpc_server_with`].
///
/// ```no_run
/// use llamacpp::{Model, ModelParams};
///
/// let remote = llamacpp::rpc::add_rpc_server("192.168.1.20:50052")?;
/// let names: Vec<&str> = remote.iter().map(|d| d.name.as_str()).collect();
/// // Every layer on the server; the CPU keeps what cannot be offloaded.
/// let model = Model::load("model.gguf", ModelParams::default().devices(&names)?)?;
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub fn add_rpc_server(endpoint: &str) -> Result<Vec<Device>> {
    add_rpc_server_with(endpoint, &ClientOptions::default())
}

/// Adds the ggml-rpc server at `endpoint` (`host:port`) and returns its devices (`RPC0`,
/// `RPC1`, ... numbered across the process), which [`ModelParams::devices`],
/// [`split_mode`](crate::ModelParams::split_mode),
/// [`tensor_split`](crate::ModelParams::tensor_split) and
/// [`n_gpu_layers`](crate::ModelParams::n_gpu_layers) then place layers on. A model loaded
/// without an explicit device list uses every added server.
///
/// Before llama.cpp connects, a pure-Rust [`probe`](super::probe) checks, within
/// `options.connect_timeout`, that the server answers, speaks this library's protocol
/// version (a patched server never pairs with an upstream client or the other way
/// round) and has devices. Adding an endpoint again returns its devices without
/// connecting (the memory figures are those reported the first time).
///
/// Failure handling depends on the build. With this project's patches, a server that
/// fails later (dies, hangs past `io_timeout`, answers garbage) makes the load or the
/// decode that uses it return [`Error::Rpc`], and the context unusable. Upstream's
/// client aborts the process instead, and can also abort here if the server goes away
/// between the probe and llama.cpp's own connection.
///
/// The protocol has no authentication or encryption: use servers on trusted networks only.
///
/// [`ModelParams::devices`]: crate::ModelParams::devices
pub fn add_rpc_server_with(endpoint: &str, options: &ClientOptions) -> Result<Vec<Device>> {
    let parsed: Endpoint = endpoint.parse()?;
    // The canonical form is what ggml caches by and what its devices describe themselves as.
    let key = parsed.to_string();
    let err = |reason: String| Error::Rpc {
        endpoint: key.clone(),
        reason,
    };
    let mut added = ADDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(devs) = added.get(&key) {
        // No network traffic here: the server may be busy with this process's own
        // connection, or gone (the memory figures are those reported when it was added).
        return Ok(devs.clone());
    }
    if !raw::available() {
        return Err(err("this llama.cpp build has no RPC backend".into()));
    }
    let io_ms = match options.io_timeout {
        None => 0,
        Some(d) if d < Duration::from_millis(1) => {
            return Err(err("the I/O timeout must be at least 1 ms (or None)".into()));
        }
        Some(d) => u32::try_from(d.as_millis()).unwrap_or(u32::MAX),
    };
    // Holding the lock meanwhile keeps a second thread from probing while llama.cpp's
    // connection to the same server is open (the server would not answer it).
    probe::probe(&parsed, options.connect_timeout)?;
    // Does nothing on the upstream build, which has no timeouts.
    raw::set_timeout(io_ms);
    let c_endpoint = c_string(&key)?;
    let (reg, log) = backend::capture_log(|| raw::add_server(&c_endpoint));
    let Some(reg) = reg else {
        return Err(err(if log.is_empty() {
            "llama.cpp could not add the server".into()
        } else {
            log
        }));
    };
    // Registered once per endpoint: `ADDED` guards against a second registration. ggml
    // keeps the registry and its devices forever. Describing a device asks the server
    // for its memory (it answered the probe just now).
    let devs: Vec<Device> = reg
        .register()
        .into_iter()
        .map(backend::device_from_raw)
        .collect();
    added.insert(key, devs.clone());
    Ok(devs)
}
