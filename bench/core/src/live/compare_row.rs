//! One test of the live comparison: upstream and patched speeds, and how far
//! the patched build's logits are from upstream's.

use serde::{Deserialize, Serialize};

use crate::record::{TestResult, fixed, test_name};
use crate::saved_compare::short_model_name;
use crate::table::{Align, Table};

/// One test run on both builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// Model file.
    pub model_filename: String,
    /// Model description (`llama_model_desc`); empty when unknown.
    #[serde(default)]
    pub model_type: String,
    /// Prompt tokens.
    pub n_prompt: i32,
    /// Generated tokens.
    pub n_gen: i32,
    /// Depth.
    pub n_depth: i32,
    /// Upstream build, mean tokens per second.
    pub upstream_ts: f64,
    /// Upstream build, standard deviation of tokens per second.
    #[serde(default)]
    pub upstream_stddev_ts: Option<f64>,
    /// Patched build, mean tokens per second.
    pub patched_ts: f64,
    /// Patched build, standard deviation of tokens per second.
    #[serde(default)]
    pub patched_stddev_ts: Option<f64>,
    /// `patched_ts / upstream_ts`.
    pub speedup: f64,
    /// Largest absolute difference between the builds' logits, if checked.
    #[serde(default)]
    pub logits_max_abs_diff: Option<f64>,
    /// Normalised mean squared error of the patched logits against upstream's
    /// (`Σ(p-u)² / Σu²`), if checked.
    #[serde(default)]
    pub logits_nmse: Option<f64>,
    /// The RPC servers (`host:port`) the upstream build's devices were on; none without `-rpc`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream_rpc: Vec<String>,
    /// The RPC servers the patched build's devices were on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patched_rpc: Vec<String>,
}

impl CompareRow {
    /// The row of a test measured on both builds (logit columns unknown).
    pub fn new(upstream: &TestResult, patched: &TestResult) -> Self {
        CompareRow {
            model_filename: upstream.model_filename.clone(),
            model_type: upstream.model_type.clone(),
            n_prompt: upstream.n_prompt,
            n_gen: upstream.n_gen,
            n_depth: upstream.n_depth,
            upstream_ts: upstream.avg_ts,
            upstream_stddev_ts: Some(upstream.stddev_ts),
            patched_ts: patched.avg_ts,
            patched_stddev_ts: Some(patched.stddev_ts),
            speedup: patched.avg_ts / upstream.avg_ts,
            logits_max_abs_diff: None,
            logits_nmse: None,
            upstream_rpc: Vec::new(),
            patched_rpc: Vec::new(),
        }
    }

    /// The markdown test name (`pp512`, `tg128 @ d4096`).
    pub fn test_name(&self) -> String {
        test_name(self.n_prompt, self.n_gen, self.n_depth)
    }

    /// The model as the table shows it: the shortened description, or the
    /// file's name when there is no description.
    pub fn model_label(&self) -> String {
        if self.model_type.is_empty() {
            let name = std::path::Path::new(&self.model_filename).file_name();
            name.map_or_else(
                || self.model_filename.clone(),
                |n| n.to_string_lossy().into_owned(),
            )
        } else {
            short_model_name(&self.model_type)
        }
    }
}

/// `avg ± stddev`, or `avg` without a deviation.
fn rate(avg: f64, stddev: Option<f64>) -> String {
    match stddev {
        Some(sd) => format!("{} ± {}", fixed(avg, 2), fixed(sd, 2)),
        None => fixed(avg, 2),
    }
}

/// A logit error in scientific notation, `n/a` when not checked.
fn error_text(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2e}"))
}

/// The rows as a markdown table: `Model | Test | t/s upstream | t/s patched |
/// Speedup | max |Δlogit| | logit NMSE`.
pub fn compare_rows_markdown(rows: &[CompareRow]) -> String {
    let mut table = Table::new([
        ("Model", Align::Left),
        ("Test", Align::Left),
        ("t/s upstream", Align::Right),
        ("t/s patched", Align::Right),
        ("Speedup", Align::Right),
        ("max abs Δlogit", Align::Right),
        ("logit NMSE", Align::Right),
    ]);
    for r in rows {
        table.push(vec![
            r.model_label(),
            r.test_name(),
            rate(r.upstream_ts, r.upstream_stddev_ts),
            rate(r.patched_ts, r.patched_stddev_ts),
            fixed(r.speedup, 2),
            error_text(r.logits_max_abs_diff),
            error_text(r.logits_nmse),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::readme_pp512;

    #[test]
    fn row_from_two_results_and_its_table() {
        let up = readme_pp512();
        let mut patched = up.clone();
        patched.set_samples(up.samples_ns.iter().map(|ns| ns / 2).collect());
        let mut row = CompareRow::new(&up, &patched);
        assert!((row.speedup - 2.0).abs() < 1e-3, "{}", row.speedup);
        assert_eq!(row.test_name(), "pp512");
        row.logits_max_abs_diff = Some(0.000123);
        let md = compare_rows_markdown(&[row.clone()]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("| Model "), "{md}");
        assert!(lines[2].contains("| qwen2 7B Q4_K_M "), "{md}");
        assert!(lines[2].contains("7100.00 ± 140.34"), "{md}");
        assert!(
            lines[2].contains("| 2.00 |") || lines[2].contains("2.00 |"),
            "{md}"
        );
        assert!(lines[2].contains("1.23e-4"), "{md}");
        assert!(lines[2].ends_with("n/a |"), "{md}");
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains("\"logits_nmse\":null"), "{json}");
        assert_eq!(serde_json::from_str::<CompareRow>(&json).unwrap(), row);
    }

    #[test]
    fn minimal_json_reads() {
        let row: CompareRow = serde_json::from_str(
            r#"{"model_filename": "m/q.gguf", "n_prompt": 0, "n_gen": 32, "n_depth": 0,
                "upstream_ts": 10, "patched_ts": 12, "speedup": 1.2}"#,
        )
        .unwrap();
        assert_eq!(row.model_label(), "q.gguf");
        assert_eq!(row.logits_nmse, None);
        assert!(row.upstream_rpc.is_empty() && row.patched_rpc.is_empty());
    }

    #[test]
    fn rpc_servers_are_written_only_when_used() {
        let up = readme_pp512();
        let mut row = CompareRow::new(&up, &up);
        let json = serde_json::to_string(&row).unwrap();
        assert!(!json.contains("_rpc"), "{json}");
        row.upstream_rpc = vec!["127.0.0.1:40001".into()];
        row.patched_rpc = vec!["127.0.0.1:40002".into()];
        let json = serde_json::to_string(&row).unwrap();
        assert!(
            json.contains(r#""upstream_rpc":["127.0.0.1:40001"]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<CompareRow>(&json).unwrap(), row);
    }
}
