//! The data layer of `llama-bench`: parameters, results, output formats and
//! comparisons, in pure Rust (no llama.cpp calls).
//!
//! - [`params`]: upstream llama-bench's flags ([`params::BenchArgs`], a
//!   `clap::Args` group), their defaults, and the expansion into tests
//!   ([`params::BenchParams::instances`]).
//! - [`record`]: one test's result ([`record::TestResult`]) with upstream's
//!   fields and statistics.
//! - [`output`]: the `-o` formats (md, csv, json, jsonl, sql), each a streaming
//!   [`output::Printer`] and a reader back into results.
//! - [`saved_compare`]: `compare A B` of two saved runs, matched as
//!   `compare-llama-bench.py` matches them.
//! - [`live`]: the row types of the live patched-vs-upstream comparison
//!   ([`live::CompareRow`]) and of the graph report ([`live::GraphStats`]).
//! - [`protocol`]: the typed requests and replies between `compare` and its worker
//!   processes.
//! - [`table`]: the pipe-table renderer the comparison reports share.
//!
//! Nothing here links llama.cpp: `cargo test -p llamacpp-bench-core` needs no C++
//! compiler. The `llama-bench` binary (`llamacpp-bench`) is the app around it.

#![forbid(unsafe_code)]

pub mod live;
pub mod output;
pub mod params;
pub mod protocol;
pub mod record;
pub mod saved_compare;
pub mod table;

#[cfg(test)]
mod fixtures;
