//! `cargo patches ...`: the tool for the patch series in `llamacpp-sys/patches/`.
//!
//! - `tree DIR [--upstream] [--git]`: write the patched (or pristine) tree, or a
//!   git repository with one commit per patch to edit;
//! - `check`: every patch applies, in order, to the verified pristine tree;
//! - `refresh DIR`: regenerate the patch files from such a git repository;
//! - `canary VERSION`: try the series on another release of the upstream package;
//! - `hash DIR`: the tree hash the pin (`llamacpp-sys/UPSTREAM`) records;
//! - `bindings [--check]`: the pregenerated bindings docs builds use.
//!
//! See `llamacpp-sys/patches/README.md` for the workflow.

mod bindings;
mod canary;
mod check;
mod export;
mod git;
mod refresh;
mod report;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llamacpp_patchkit::{Result, tree};

use crate::workspace::Paths;

/// Maintain the llama.cpp patch series (llamacpp-sys/patches/series) over the pinned upstream tree.
#[derive(Debug, Parser)]
#[command(name = "patches", version)]
struct Cli {
    /// The pin file [default: llamacpp-sys/UPSTREAM]
    #[arg(long, global = true, value_name = "FILE")]
    pin: Option<PathBuf>,
    /// Where fetched upstream trees are kept [default: $LLAMACPP_SYS_SOURCE_CACHE, else $CARGO_HOME/llamacpp-sys/sources]
    #[arg(long, global = true, value_name = "DIR")]
    source_cache: Option<PathBuf>,
    /// Directory holding `series` and the patch files [default: llamacpp-sys/patches/]
    #[arg(long, global = true, value_name = "DIR")]
    patches: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the patched source tree to DIR, to build elsewhere with plain CMake.
    Tree {
        /// Output directory; must be empty or absent (see --force).
        dir: PathBuf,
        /// Write the pristine upstream tree instead of the patched one.
        #[arg(long)]
        upstream: bool,
        /// Make DIR a git repository: the pristine tree (tag `upstream-base`), then one commit per patch.
        #[arg(long)]
        git: bool,
        /// Reuse a non-empty DIR: make it match the tree, deleting files that are not in it.
        #[arg(long, conflicts_with = "git")]
        force: bool,
    },
    /// Check that every patch applies cleanly, in order, to the verified pristine tree.
    Check,
    /// Regenerate the patch files and `series` from the commits after `upstream-base` in git tree DIR.
    Refresh {
        /// A repository made by `tree --git`.
        dir: PathBuf,
    },
    /// Fetch another release of the upstream package and report how each patch fares on it.
    Canary {
        /// The release to try, e.g. 0.1.162.
        version: String,
    },
    /// Print the tree hash (tree-sha256 in the pin) of a directory.
    Hash {
        /// The directory to hash.
        dir: PathBuf,
    },
    /// Regenerate llamacpp-sys/pregenerated/bindings.rs.in (what docs builds compile).
    Bindings {
        /// Fail if the committed file differs from a fresh one instead of writing it.
        #[arg(long)]
        check: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    let paths = Paths::new(cli.pin, cli.source_cache, cli.patches)?;
    match cli.command {
        Command::Tree {
            dir,
            upstream,
            git,
            force,
        } => export::run(&paths, &dir, upstream, git, force),
        Command::Check => check::run(&paths),
        Command::Refresh { dir } => refresh::run(&paths, &dir),
        Command::Canary { version } => canary::run(&paths, &version),
        Command::Bindings { check } => bindings::run(&paths, check),
        Command::Hash { dir } => {
            println!("{}", tree::tree_hash(&tree::manifest(&dir)?));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
