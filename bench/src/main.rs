//! `llama-bench`: upstream llama-bench's flags and output, plus
//! `compare` (patched vs upstream, side by side), `graph`, `membw`, `profile`, `synth`.
//!
//! With no subcommand it runs upstream's benchmark on the linked build (`run`), so
//! `llama-bench -m model.gguf -p 512` works as upstream's does.
//!
//! `-rpc host:port,...` registers ggml-rpc servers as upstream's does (devices `RPC0`, ...,
//! picked with `-dev`). `compare` needs servers per build, since the patched and upstream
//! ggml-rpc refuse each other: `-rpc` (patched) with `--rpc-upstream` (upstream), or
//! `--rpc-local N [--rpc-threads T]` to start N loopback servers per build (the hidden
//! `rpc-server` subcommand, in that build's library environment).

// The app calls llama.cpp through the safe crate only.
#![forbid(unsafe_code)]

mod checks;
mod cli;
mod compare;
mod models;
mod profile;
mod roofline;
mod rpc;
mod run;
mod runner;
mod to_llama;
mod worker;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use llamacpp_bench_core::params::{BenchArgs, normalize_args};

/// Errors here are messages for the user.
pub type Result<T> = std::result::Result<T, String>;

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[derive(Debug, Parser)]
#[command(
    name = "llama-bench",
    about = "Benchmark llama.cpp: upstream llama-bench's flags, plus the patched build \
             against upstream side by side",
    subcommand_required = true,
    after_help = "With no subcommand, `llama-bench [flags]` is `llama-bench run [flags]`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upstream's benchmark on the build this binary links (the default).
    #[command(after_help = RUN_AFTER_HELP)]
    Run(BenchArgs),
    /// The upstream and the patched build side by side, or two saved runs.
    Compare(compare::CompareArgs),
    /// Per build, the node statistics of one decode step and one prompt ubatch.
    Graph(cli::GraphArgs),
    /// This machine's read bandwidth.
    Membw(cli::MembwArgs),
    /// Per-op times and matmul bandwidth of a decode step or a prompt ubatch.
    Profile(profile::ProfileArgs),
    /// Write a synthetic random-weight GGUF model.
    Synth(llamacpp_synth::cli::SynthArgs),
    /// One build's worker process of `compare` and `graph`, driven over stdin/stdout.
    #[command(hide = true)]
    Worker,
    /// A loopback ggml-rpc server (for `compare --rpc-local` and tests).
    #[command(hide = true)]
    RpcServer(rpc::server::ServerArgs),
}

const RUN_AFTER_HELP: &str = "Multiple values can be given for each test parameter by \
    separating them with ',' or by giving the flag several times. Integer ranges can be given \
    as 'first-last', 'first-last+step' or 'first-last*mult'.\n\nOther commands: compare, \
    graph, membw, profile, synth (`llama-bench help`).";

/// The command line with `run` inserted when it names no subcommand, as upstream's
/// `llama-bench -p 512` has none.
fn with_subcommand(mut argv: Vec<String>) -> Vec<String> {
    let cmd = Cli::command();
    let named = argv.get(1).is_some_and(|a| {
        a == "help"
            || cmd
                .get_subcommands()
                .any(|s| s.get_name() == a || s.get_all_aliases().any(|x| x == a))
    });
    if !named {
        argv.insert(1.min(argv.len()), "run".to_string());
    }
    argv
}

/// The flags (`--long` names) and positional values (ids) of subcommand `sub` given on the
/// command line, not defaulted.
fn given(sub: &str, m: &ArgMatches) -> Vec<String> {
    let cmd = Cli::command();
    let Some(sub) = cmd.find_subcommand(sub) else {
        return Vec::new();
    };
    sub.get_arguments()
        .filter(|a| m.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| {
            a.get_long()
                .map_or_else(|| a.get_id().to_string(), |l| format!("--{l}"))
        })
        .collect()
}

/// The subcommand of `argv` (program name first) and the flags given for it.
fn parse(argv: Vec<String>) -> std::result::Result<(Command, Vec<String>), clap::Error> {
    let argv = with_subcommand(argv);
    // Upstream's single-dash long flags (`-ngl 99`, `-ub 512`) for every subcommand.
    let argv = normalize_args(&Cli::command(), argv);
    let matches = Cli::command().try_get_matches_from(argv)?;
    let given = matches
        .subcommand()
        .map(|(name, m)| given(name, m))
        .unwrap_or_default();
    Ok((Cli::from_arg_matches(&matches)?.command, given))
}

fn dispatch(command: Command, given: &[String]) -> Result<()> {
    match command {
        Command::Run(a) => run::run(&a),
        Command::Compare(a) => compare::run(a, given),
        Command::Graph(a) => cli::graph(a),
        Command::Membw(a) => cli::membw(&a),
        Command::Profile(a) => profile::run(&a),
        Command::Synth(a) => llamacpp_synth::cli::run(&a).map(|_| ()).map_err(err),
        Command::Worker => worker::serve(),
        Command::RpcServer(a) => rpc::server::run(&a),
    }
}

fn main() {
    let (command, given) = parse(std::env::args().collect()).unwrap_or_else(|e| e.exit());
    if let Err(e) = dispatch(command, &given) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> std::result::Result<(Command, Vec<String>), clap::Error> {
        let argv = std::iter::once("llama-bench").chain(args.iter().copied());
        parse(argv.map(String::from).collect())
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_run_with_upstream_flags() {
        let (c, g) = parse_args(&["-ngl", "99", "-p", "512", "-ub", "256"]).unwrap();
        let Command::Run(a) = c else { panic!("{c:?}") };
        let p = a.resolve();
        assert_eq!(
            (p.n_gpu_layers, p.n_prompt, p.n_ubatch),
            (vec![99], vec![512], vec![256])
        );
        assert_eq!(g, ["--n-prompt", "--ubatch-size", "--n-gpu-layers"]);
        let (c, _) = parse_args(&[]).unwrap();
        assert!(matches!(c, Command::Run(_)));
    }

    #[test]
    fn compare_takes_upstream_flags_and_its_own() {
        let argv = [
            "compare",
            "-ngl",
            "0",
            "-fa",
            "1",
            "--check",
            "--min-speedup",
            "pp512=1.3",
            "--max-nodes-ratio",
            "0.75",
            "--rpc-local",
            "1",
        ];
        let (c, g) = parse_args(&argv).unwrap();
        let Command::Compare(a) = c else {
            panic!("{c:?}")
        };
        assert!(a.check && a.saved.is_empty());
        assert_eq!(a.min_speedup, vec![("pp512".to_string(), 1.3)]);
        assert_eq!((a.max_nodes_ratio, a.rpc.local), (Some(0.75), Some(1)));
        assert_eq!(a.bench.resolve().n_gpu_layers, vec![0]);
        assert!(a.check_flags_without_check(&g).is_none());

        let (c, g) = parse_args(&["compare", "--min-speedup", "tg32=1.05"]).unwrap();
        let Command::Compare(a) = c else {
            panic!("{c:?}")
        };
        let e = a.check_flags_without_check(&g).unwrap();
        assert_eq!(e, "--min-speedup needs --check");

        let (c, g) = parse_args(&["compare", "a.jsonl", "b.jsonl"]).unwrap();
        let Command::Compare(a) = c else {
            panic!("{c:?}")
        };
        assert_eq!(a.saved.len(), 2);
        assert_eq!(g, ["saved"]);
        let (_, g) = parse_args(&["compare", "-ngl", "1", "a.jsonl", "b.jsonl"]).unwrap();
        assert_eq!(g, ["saved", "--n-gpu-layers"]);

        assert!(parse_args(&["compare", "--min-speedup", "pp512"]).is_err());
        assert!(parse_args(&["compare", "--steps", "0"]).is_err());
    }

    #[test]
    fn every_subcommand_parses_its_flags() {
        let (c, _) = parse_args(&["graph", "-ub", "64", "-o", "json", "--nodes"]).unwrap();
        assert!(matches!(c, Command::Graph(_)), "{c:?}");
        assert!(parse_args(&["graph", "-o", "csv"]).is_err());
        let (c, _) = parse_args(&["membw", "-t", "3"]).unwrap();
        assert!(matches!(c, Command::Membw(_)), "{c:?}");
        let (c, _) = parse_args(&["profile", "-ngl", "2", "-b", "8"]).unwrap();
        assert!(matches!(c, Command::Profile(_)), "{c:?}");
        let (c, _) = parse_args(&["synth", "--preset", "llama3-8b", "-o", "x.gguf"]).unwrap();
        assert!(matches!(c, Command::Synth(_)), "{c:?}");
        let (c, _) = parse_args(&["worker"]).unwrap();
        assert!(matches!(c, Command::Worker), "{c:?}");
        let (c, _) = parse_args(&["rpc-server", "--port", "0", "-t", "2"]).unwrap();
        assert!(matches!(c, Command::RpcServer(_)), "{c:?}");
        let e = parse_args(&["-nglx", "1"]).unwrap_err();
        assert!(e.to_string().contains("nglx"), "{e}");
    }
}
