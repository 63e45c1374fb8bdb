//! `llama-bench`: upstream llama-bench's flags and output, plus
//! `compare` (patched vs upstream, side by side), `graph`, `membw`, `profile`, `synth`.
//!
//! `-rpc host:port,...` registers ggml-rpc servers as upstream's does (devices `RPC0`, ...,
//! picked with `-dev`). `compare` needs servers per build, since the patched and upstream
//! ggml-rpc refuse each other: `-rpc` (patched) with `--rpc-upstream` (upstream), or
//! `--rpc-local N [--rpc-threads T]` to start N loopback servers per build (the hidden
//! `rpc-server` subcommand, in that build's library environment).

mod bench_run;
mod checks;
mod cli;
mod compare;
mod models;
mod profile;
mod roofline;
mod rpc;
mod runner;
mod to_llama;
mod worker;

/// Errors here are messages for the user.
pub type Result<T> = std::result::Result<T, String>;

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker::serve(),
        Some("compare") => bench_run::compare(&args[1..]),
        Some("graph") => cli::graph(&args[1..]),
        Some("membw") => cli::membw(&args[1..]),
        Some("profile") => profile::run(&args[1..]),
        // Hidden: the loopback servers of `compare --rpc-local` (and of tests).
        Some("rpc-server") => rpc::server::run(&args[1..]),
        Some("synth") => cli::synth(&args[1..]),
        _ => bench_run::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
