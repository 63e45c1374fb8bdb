//! `llama-rpc-server`: serves this machine's devices to llama.cpp clients over ggml-rpc
//! (upstream's `rpc-server`, with a loopback default that needs `--allow-remote` to change).

mod signals;

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use llamacpp::rpc::{self, RpcServer, RpcServerConfig};

/// Serve this machine's devices to llama.cpp clients (`--rpc HOST:PORT`) over ggml-rpc.
///
/// The protocol has no authentication and no encryption: whoever can reach the port can
/// run code in this process. It listens on 127.0.0.1 unless told otherwise.
#[derive(Debug, Parser)]
#[command(name = "llama-rpc-server", version)]
struct Args {
    /// IPv4 address to listen on (anything but loopback needs --allow-remote).
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    host: Ipv4Addr,
    /// TCP port (0: any free port; the "listening on" line says which).
    #[arg(short, long, default_value_t = 50052)]
    port: u16,
    /// Devices to serve, comma-separated (default: the CPU). `--list-devices` shows them.
    #[arg(short, long, value_delimiter = ',')]
    device: Vec<String>,
    /// CPU threads for computing (default: all available).
    #[arg(short, long)]
    threads: Option<usize>,
    /// Keep received tensors in $LLAMA_CACHE/rpc (or ~/.cache/llama.cpp/rpc), so that
    /// loading the same model again sends hashes instead of weights.
    #[arg(short, long)]
    cache: bool,
    /// Listen on a non-loopback address, although the protocol has no authentication.
    #[arg(long)]
    allow_remote: bool,
    /// Print the devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Print llama.cpp's log to standard error.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    llamacpp::backend::set_logging(args.verbose);
    llamacpp::backend::log_to_stderr(args.verbose);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llama-rpc-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.list_devices {
        for d in llamacpp::backend::devices() {
            println!(
                "{}: {} ({} MiB)",
                d.name,
                d.description,
                d.memory_total >> 20
            );
        }
        return Ok(());
    }
    let mut config = RpcServerConfig::default()
        .host(args.host)
        .port(args.port)
        .devices(args.device)
        .allow_remote(args.allow_remote)
        .cache_dir(if args.cache { Some(cache_dir()?) } else { None });
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    if !rpc::support().stoppable_server {
        return serve_upstream(config);
    }
    // Before any thread starts, so that every thread inherits the blocked signals and
    // only `wait_for_stop` receives them.
    let stop = signals::StopSignals::block()?;
    let server = RpcServer::start(config)?;
    announce(&server.addr().to_string())?;
    let signal = stop.wait()?;
    eprintln!("llama-rpc-server: {signal}, stopping");
    server.stop();
    Ok(())
}

/// The upstream build has no stoppable server: serve until killed (signals keep their
/// default action, which ends the process).
fn serve_upstream(config: RpcServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    if config.port == 0 {
        return Err(
            "port 0 needs this project's patched build (the upstream server cannot \
                    report the port it bound)"
                .into(),
        );
    }
    config.validate()?;
    // Printed before binding: upstream's function binds and serves in one call.
    announce(&format!("{}:{}", config.host, config.port))?;
    match rpc::serve_forever(config)? {}
}

/// The one line scripts and tests wait for.
fn announce(addr: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

/// `$LLAMA_CACHE/rpc`, else `$XDG_CACHE_HOME/llama.cpp/rpc`, else `~/.cache/llama.cpp/rpc`
/// (where upstream's rpc-server keeps it).
fn cache_dir() -> Result<PathBuf, String> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = env("LLAMA_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("llama.cpp")))
        .or_else(|| home::home_dir().map(|h| h.join(".cache").join("llama.cpp")))
        .ok_or("no cache directory: set LLAMA_CACHE")?;
    Ok(base.join("rpc"))
}
