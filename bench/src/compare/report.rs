//! What `compare` prints: a header naming both builds and the machine, the rows, the notes
//! (logits, graph sizes, bandwidth), and the `--check` verdict.

use std::io::Write;

use llamacpp_bench_core::live::{CompareRow, Correctness, compare_rows_markdown};
use llamacpp_bench_core::params::OutputFormat;
use llamacpp_bench_core::protocol::{GraphCounts, RpcDevice};

use super::workers::Pair;
use crate::roofline::WeightBytes;
use crate::{Result, err};

/// The report of one `compare` run, filled in stage by stage.
#[derive(Debug, Default)]
pub struct Report {
    header: String,
    rows: Vec<CompareRow>,
    notes: Vec<String>,
    failures: Vec<String>,
}

/// `RPC0=127.0.0.1:50052, ...`.
fn rpc_devices_text(devices: &[RpcDevice]) -> String {
    devices
        .iter()
        .map(|d| format!("{}={}", d.name, d.description))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The header, from the first pair of workers (later groups run the same builds).
    pub fn header_once(&mut self, pair: &Pair, machine: &str, rpc: bool) {
        if !self.header.is_empty() {
            return;
        }
        self.header = format!(
            "upstream build: {} | patched build: {} | {machine}",
            pair.commits[0], pair.commits[1]
        );
        if rpc {
            self.header.push_str(&format!(
                " | RPC devices: upstream {} / patched {}",
                rpc_devices_text(&pair.rpc_devices[0]),
                rpc_devices_text(&pair.rpc_devices[1])
            ));
        }
        eprintln!("{}", self.header);
    }

    /// The logits and greedy comparison of one model.
    pub fn correctness(&mut self, model: &str, c: &Correctness) {
        self.notes.push(format!(
            "{model}: teacher-forced {} steps: max |Δlogit| {:.3e}, max NMSE {:.3e} (first step {:.3e}); greedy continuations {}",
            c.steps,
            c.max_abs_diff,
            c.max_nmse,
            c.first_nmse,
            if c.greedy_match() { "identical" } else { "differ" }
        ));
    }

    /// The decode-graph sizes of one model (`[upstream, patched]`).
    pub fn decode_graph(&mut self, model: &str, decode: &[GraphCounts; 2]) {
        self.notes.push(format!(
            "{model}: decode graph nodes {} -> {}, copy bytes {} -> {}, gathered bytes {} -> {}",
            decode[0].n_nodes,
            decode[1].n_nodes,
            decode[0].copy_bytes,
            decode[1].copy_bytes,
            decode[0].gather_bytes,
            decode[1].gather_bytes
        ));
    }

    /// The read bandwidth a generation row reached on each build, against the machine's.
    pub fn bandwidth(&mut self, row: &CompareRow, w: &WeightBytes, membw: f64) {
        let gbs = |ts: f64| w.per_token as f64 * ts / 1e9;
        self.notes.push(format!(
            "{} {}: weights read per token {:.1} MB -> upstream {:.1} GB/s ({:.0}% of {:.1} GB/s), patched {:.1} GB/s ({:.0}%)",
            row.model_type,
            row.test_name(),
            w.per_token as f64 / 1e6,
            gbs(row.upstream_ts),
            100.0 * gbs(row.upstream_ts) * 1e9 / membw,
            membw / 1e9,
            gbs(row.patched_ts),
            100.0 * gbs(row.patched_ts) * 1e9 / membw
        ));
    }

    /// A measured row.
    pub fn row(&mut self, row: CompareRow) {
        self.rows.push(row);
    }

    /// The rows so far.
    pub fn rows(&self) -> &[CompareRow] {
        &self.rows
    }

    /// Broken `--check` limits.
    pub fn fail(&mut self, failures: Vec<String>) {
        self.failures.extend(failures);
    }

    /// Prints the rows (as JSON for `-o json`/`jsonl`, else the header, a markdown table and
    /// the notes) and turns failures into the error.
    pub fn finish(self, output: OutputFormat, check: bool) -> Result<()> {
        match output {
            OutputFormat::Json | OutputFormat::Jsonl => {
                println!("{}", serde_json::to_string_pretty(&self.rows).map_err(err)?)
            }
            _ => {
                println!("{}\n", self.header);
                print!("{}", compare_rows_markdown(&self.rows));
                println!();
                for n in &self.notes {
                    println!("- {n}");
                }
            }
        }
        let _ = std::io::stdout().flush();
        if !self.failures.is_empty() {
            return Err(format!(
                "compare --check failed:\n  {}",
                self.failures.join("\n  ")
            ));
        }
        if check {
            eprintln!("compare --check: passed");
        }
        Ok(())
    }
}
