//! [`RpcServer`]: a ggml-rpc server in this process, and [`serve_forever`].

use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::thread::JoinHandle;

use super::raw::{self, NewServer, RawServer, ServerArgs};
use crate::error::{Error, Result, c_string};
use crate::raw::backend::RawDevice;

/// The most threads a server takes (a typo guard, far above any machine's cores).
const MAX_THREADS: usize = 1024;

/// What the server warns about a non-loopback address, one line each.
const REMOTE_WARNING: [&str; 3] = [
    "WARNING: the RPC protocol has no authentication and no encryption.",
    "WARNING: whoever can reach this port can run code in this process.",
    "WARNING: never expose it to an open network.",
];

/// How an RPC server is set up.
///
/// ```
/// use llamacpp::rpc::RpcServerConfig;
///
/// let config = RpcServerConfig::default().port(0).threads(1);
/// assert_eq!(config.host, std::net::Ipv4Addr::LOCALHOST);
/// assert!(!config.allow_remote);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcServerConfig {
    /// The IPv4 address to listen on. Default 127.0.0.1; any other than a loopback address
    /// needs [`allow_remote`](RpcServerConfig::allow_remote).
    pub host: Ipv4Addr,
    /// The TCP port. Default 50052; 0 picks a free port ([`RpcServer::addr`] tells which).
    pub port: u16,
    /// The devices to serve, by name as [`backend::devices`](crate::backend::devices)
    /// reports them. Empty (the default): the CPU.
    pub devices: Vec<String>,
    /// CPU threads for computing (1-1024). Default: the available parallelism.
    pub threads: usize,
    /// Where to keep received tensors by their hash, so that a client loading the same
    /// weights again sends hashes instead of data. Default `None` (no cache). Created if
    /// missing.
    pub cache_dir: Option<PathBuf>,
    /// Listen on a non-loopback address. The protocol has no authentication: whoever can
    /// reach the port can run code in this process. Default `false`.
    pub allow_remote: bool,
}

impl Default for RpcServerConfig {
    fn default() -> Self {
        Self {
            host: Ipv4Addr::LOCALHOST,
            port: 50052,
            devices: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache_dir: None,
            allow_remote: false,
        }
    }
}

impl RpcServerConfig {
    /// Sets [`RpcServerConfig::host`].
    pub fn host(mut self, host: Ipv4Addr) -> Self {
        self.host = host;
        self
    }

    /// Sets [`RpcServerConfig::port`].
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`RpcServerConfig::devices`].
    pub fn devices<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.devices = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`RpcServerConfig::threads`].
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// Sets [`RpcServerConfig::cache_dir`].
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Sets [`RpcServerConfig::allow_remote`].
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Runs the checks [`RpcServer::start`] and [`serve_forever`] make before binding
    /// (loopback or `allow_remote`, thread count, device names; the cache directory is
    /// created), e.g. to report a bad configuration before announcing the address.
    ///
    /// ```
    /// use llamacpp::rpc::RpcServerConfig;
    ///
    /// assert!(RpcServerConfig::default().threads(1).validate().is_ok());
    /// assert!(RpcServerConfig::default().threads(0).validate().is_err());
    /// assert!(RpcServerConfig::default().devices(["NoSuchDevice"]).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        prepare(self, false).map(drop)
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The checked arguments of the C server functions.
struct Prepared {
    endpoint: CString,
    cache_dir: Option<CString>,
    threads: usize,
    devices: Vec<RawDevice>,
}

impl Prepared {
    fn args(&self) -> ServerArgs<'_> {
        ServerArgs {
            endpoint: &self.endpoint,
            cache_dir: self.cache_dir.as_deref(),
            threads: self.threads,
            devices: &self.devices,
        }
    }
}

/// The C arguments for `config`; `warn`: print the non-loopback warning (when serving).
fn prepare(config: &RpcServerConfig, warn: bool) -> Result<Prepared> {
    let endpoint = config.endpoint();
    let err = |reason: String| Error::Rpc {
        endpoint: endpoint.clone(),
        reason,
    };
    if !config.host.is_loopback() {
        if !config.allow_remote {
            return Err(err(format!(
                "{} is not a loopback address; the protocol has no authentication, so \
                 listening there needs allow_remote (whoever reaches the port can run code \
                 in this process)",
                config.host
            )));
        }
        for line in REMOTE_WARNING.iter().filter(|_| warn) {
            tracing::warn!(target: "llamacpp::rpc", "{line}");
            eprintln!("{line}");
        }
    }
    if !(1..=MAX_THREADS).contains(&config.threads) {
        return Err(Error::OutOfRange {
            what: "RPC server threads",
            value: config.threads as i64,
            expected: format!("1..={MAX_THREADS}"),
        });
    }
    let devices = if config.devices.is_empty() {
        let Some(cpu) = RawDevice::cpu() else {
            return Err(err("this llama.cpp build has no CPU device".into()));
        };
        vec![cpu]
    } else {
        let mut list: Vec<RawDevice> = Vec::with_capacity(config.devices.len());
        for name in &config.devices {
            let c = c_string(name)?;
            let Some(dev) = RawDevice::by_name(&c) else {
                let known: Vec<String> = crate::backend::devices()
                    .into_iter()
                    .map(|d| d.name)
                    .collect();
                return Err(err(format!(
                    "no device named {name:?} (devices: {})",
                    known.join(", ")
                )));
            };
            if list.iter().any(|d| d.as_ptr() == dev.as_ptr()) {
                return Err(err(format!("device {name} is listed twice")));
            }
            list.push(dev);
        }
        list
    };
    let cache_dir = match &config.cache_dir {
        None => None,
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(format!(
                    "cannot create the cache directory {}: {e}",
                    dir.display()
                ))
            })?;
            Some(crate::error::path_c_string(dir)?)
        }
    };
    Ok(Prepared {
        endpoint: c_string(&endpoint)?,
        cache_dir,
        threads: config.threads,
        devices,
    })
}

/// A ggml-rpc server running on a thread of this process (patched build only), so that
/// other processes, here or on other machines, can put model layers on this machine's
/// devices. Dropping it (or [`RpcServer::stop`]) stops serving, closes the current
/// client's connection and frees the server.
///
/// It is `Send` and `Sync`: the C server may be stopped from any thread.
///
/// ```
/// use std::time::Duration;
/// use llamacpp::rpc::{RpcServer, RpcServerConfig};
///
/// if llamacpp::rpc::support().stoppable_server {
///     let server = RpcServer::start(RpcServerConfig::default().port(0).threads(1))?;
///     println!("listening on {}", server.addr());
///     let endpoint = server.addr().to_string().parse()?;
///     let info = llamacpp::rpc::probe(&endpoint, Duration::from_secs(5))?;
///     assert_eq!(info.devices, 1); // the CPU
///     server.stop();
/// }
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct RpcServer {
    /// Freed after `drop` below has joined the thread (fields drop after `Drop::drop`).
    server: RawServer,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for RpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RpcServer {
    /// Binds and starts serving on a new thread. Errors: a non-loopback host without
    /// `allow_remote`, an unknown device, a thread count outside 1-1024, a port that
    /// cannot be bound, or the upstream build (which has no way to stop a server: use
    /// [`serve_forever`] there).
    pub fn start(config: RpcServerConfig) -> Result<RpcServer> {
        let endpoint = config.endpoint();
        let err = |reason: &str| Error::Rpc {
            endpoint: endpoint.clone(),
            reason: reason.to_string(),
        };
        let unsupported = || {
            err(
                "this llama.cpp build (upstream) cannot run a stoppable server; use \
                 rpc::serve_forever",
            )
        };
        if !raw::stoppable_server() {
            return Err(unsupported());
        }
        let p = prepare(&config, true)?;
        let (started, log) = crate::backend::capture_log(|| RawServer::bind(&p.args()));
        let (server, runner) = match started {
            NewServer::Started(server, runner) => (server, runner),
            NewServer::Unsupported => return Err(unsupported()),
            NewServer::Failed => {
                return Err(err(&if log.is_empty() {
                    "cannot start the server (address in use?)".to_string()
                } else {
                    log
                }));
            }
        };
        let bound = server.port();
        let spawned = std::thread::Builder::new()
            .name("llama-rpc-server".into())
            // the server builds a client's graph recursively along source chains (up to 8192
            // deep, about 0.9 MB at 96 bytes a frame): more room than the 2 MiB default
            .stack_size(16 << 20)
            .spawn(move || runner.run());
        let thread = match spawned {
            Ok(t) => t,
            // The server never ran: dropping `server` (and the unspawned closure's
            // `runner`) frees it.
            Err(e) => return Err(err(&format!("cannot spawn the server thread: {e}"))),
        };
        Ok(RpcServer {
            server,
            thread: Some(thread),
            addr: SocketAddr::V4(SocketAddrV4::new(config.host, bound)),
        })
    }

    /// The address it listens on, with the port actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (closing the current client's connection), waits for the server
    /// thread and frees the server. Dropping the server does the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.server.stop();
        if let Some(t) = self.thread.take() {
            // The thread only runs the C function, which does not unwind.
            let _ = t.join();
        }
        // `self.server` is dropped next: with the thread joined it is the last owner, and
        // frees the server (`run` has returned).
    }
}

/// Serves on this thread until the process ends, with the same checks as
/// [`RpcServer::start`], through the C function that the upstream build has too (the way
/// to serve on that build). Port 0 is refused, since the bound port could not be reported.
/// It returns only on failure (address in use, no such device, ...); ggml's own message
/// goes to standard error.
///
/// ```no_run
/// use llamacpp::rpc::{RpcServerConfig, serve_forever};
///
/// let err = serve_forever(RpcServerConfig::default().port(50052)).unwrap_err();
/// eprintln!("{err}");
/// ```
pub fn serve_forever(config: RpcServerConfig) -> Result<std::convert::Infallible> {
    let endpoint = config.endpoint();
    let err = |reason: &str| Error::Rpc {
        endpoint: endpoint.clone(),
        reason: reason.to_string(),
    };
    if !raw::can_start_server() {
        return Err(err("this llama.cpp build has no RPC backend"));
    }
    if config.port == 0 {
        return Err(err(
            "port 0 cannot be served forever: the bound port could not be reported",
        ));
    }
    let p = prepare(&config, true)?;
    // Blocks while serving; checked above that the function exists.
    raw::start_server(&p.args());
    Err(err(
        "the server stopped (could not bind the address, or a device failed; see standard \
         error)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_handle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RpcServer>();
        assert_send_sync::<RpcServerConfig>();
    }

    #[test]
    fn bad_configs_are_refused_before_binding() {
        let remote = RpcServerConfig::default().host(Ipv4Addr::new(0, 0, 0, 0));
        let e = prepare(&remote, false).err().unwrap().to_string();
        assert!(e.contains("allow_remote"), "{e}");
        assert!(prepare(&RpcServerConfig::default().threads(0), false).is_err());
        assert!(prepare(&RpcServerConfig::default().threads(MAX_THREADS + 1), false).is_err());
        let e = prepare(&RpcServerConfig::default().devices(["NoSuchDevice"]), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("NoSuchDevice"), "{e}");
        assert!(prepare(&RpcServerConfig::default().devices(["CPU", "CPU"]), false).is_err());
        assert!(prepare(&RpcServerConfig::default().threads(1), false).is_ok());
        assert!(serve_forever(RpcServerConfig::default().port(0)).is_err());
    }
}
