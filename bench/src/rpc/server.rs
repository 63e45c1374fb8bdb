//! `llama-bench rpc-server` (hidden): a ggml-rpc server on the build this process loaded, for
//! `compare --rpc-local` and for tests. It prints `listening on 127.0.0.1:PORT` once clients can
//! connect, and serves until killed (or, with `--watch-stdin`, until its standard input closes).
//!
//! It binds loopback addresses only: the protocol has no authentication, and these servers are
//! for measuring on one machine.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llamacpp::rpc::{RpcServer, RpcServerConfig};

use crate::{Result, err};

/// How long the upstream build's server may take to accept connections.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Ports tried on the upstream build when another process takes the one picked.
const PORT_TRIES: usize = 8;

/// The flags of `llama-bench rpc-server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Loopback address to listen on.
    #[arg(long = "host", default_value_t = Ipv4Addr::LOCALHOST)]
    host: Ipv4Addr,
    /// Port; 0 picks a free one.
    #[arg(long = "port", default_value_t = 0)]
    port: u16,
    /// CPU threads for computing.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Exit when standard input reaches its end (the parent holds it open).
    #[arg(long = "watch-stdin")]
    watch_stdin: bool,
    /// Keep llama.cpp's log (on standard error): why a client's request was refused.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

/// `llama-bench rpc-server [--host 127.0.0.1] [--port P] [--threads T] [--watch-stdin] [-v]`.
pub fn run(a: &ServerArgs) -> Result<()> {
    if !a.host.is_loopback() {
        return Err(format!(
            "rpc-server --host {}: loopback addresses only (the RPC protocol has no \
             authentication; whoever reaches the port can run code in this process)",
            a.host
        ));
    }
    llamacpp::backend::set_logging(a.verbose);
    llamacpp::backend::log_to_stderr(a.verbose);
    let config = RpcServerConfig::default()
        .host(a.host)
        .port(a.port)
        .threads(a.threads);
    if llamacpp::rpc::support().stoppable_server {
        let server = RpcServer::start(config).map_err(err)?;
        announce(server.addr())?;
        wait(a.watch_stdin);
        server.stop();
        Ok(())
    } else {
        serve_upstream(config, a.watch_stdin)
    }
}

/// Tells the parent where to connect.
fn announce(addr: SocketAddr) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}").map_err(err)?;
    out.flush().map_err(err)
}

/// Blocks until standard input closes (`watch_stdin`) or for ever.
fn wait(watch_stdin: bool) {
    if watch_stdin {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    } else {
        loop {
            std::thread::park();
        }
    }
}

/// A port no socket uses right now (another process may take it before the server binds it:
/// [`serve_upstream`] then tries another).
fn free_port(host: Ipv4Addr) -> Result<u16> {
    let l = TcpListener::bind((host, 0)).map_err(err)?;
    Ok(l.local_addr().map_err(err)?.port())
}

/// The upstream build has only the blocking `serve_forever`, which needs a concrete port and
/// reports nothing when it listens: it serves on a thread while this one connects to the port
/// until the server accepts, then announces it. A server that cannot bind returns at once, and
/// another port is tried (when the port was picked here).
fn serve_upstream(config: RpcServerConfig, watch_stdin: bool) -> Result<()> {
    let fixed = config.port != 0;
    let mut last = String::new();
    for _ in 0..if fixed { 1 } else { PORT_TRIES } {
        let port = if fixed {
            config.port
        } else {
            free_port(config.host)?
        };
        let addr = SocketAddr::from((config.host, port));
        let cfg = config.clone().port(port);
        let serving: JoinHandle<String> =
            std::thread::spawn(move || match llamacpp::rpc::serve_forever(cfg) {
                Ok(never) => match never {},
                Err(e) => e.to_string(),
            });
        match wait_listening(addr, serving) {
            Ok(_serving) => {
                announce(addr)?;
                wait(watch_stdin);
                // serve_forever cannot be stopped: leave the process, and the thread with it.
                std::process::exit(0);
            }
            Err(Stopped(e)) => last = e,
            Err(TimedOut(e)) => return Err(format!("rpc-server: {e}")),
        }
    }
    Err(format!("rpc-server: could not listen: {last}"))
}

/// Why a server is not listening.
enum NotListening {
    /// It returned (could not bind): its error. Another port may do.
    Stopped(String),
    /// It neither listens nor returned.
    TimedOut(String),
}
use NotListening::{Stopped, TimedOut};

/// Connects to `addr` until a connection succeeds while `serving` still runs.
fn wait_listening(
    addr: SocketAddr,
    serving: JoinHandle<String>,
) -> std::result::Result<JoinHandle<String>, NotListening> {
    let ended = |serving: JoinHandle<String>| {
        serving
            .join()
            .unwrap_or_else(|_| format!("{addr}: the server thread panicked"))
    };
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        if serving.is_finished() {
            return Err(Stopped(ended(serving)));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // The connection could have reached another process that took the port first; a
            // server that failed to bind has returned by now.
            std::thread::sleep(Duration::from_millis(100));
            if serving.is_finished() {
                return Err(Stopped(ended(serving)));
            }
            return Ok(serving);
        }
        if Instant::now() > deadline {
            return Err(TimedOut(format!(
                "{addr}: no connection within {LISTEN_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
