//! `compare A B`: two saved runs side by side, as `compare-llama-bench.py`
//! compares two builds.
//!
//! Results are matched on the script's key properties ([`KEY_PROPERTIES`]:
//! hardware, model, every test parameter and the test shape; not build, time
//! or timing fields). Each side's `avg_ts` is averaged over its results with
//! the same key (not weighted by repetitions, as the script does), and
//! `Speedup` is `t/s B / t/s A`.
//!
//! The table is the script's: `Model`, then any key property whose value is not
//! the same in every row (under the script's names), `Test` (`pp512`,
//! `tg128@d4096`), `t/s A`, `t/s B` and `Speedup`, numbers with two decimals;
//! rows ordered as the script orders them (model, shown properties, then
//! `n_gen`, `n_prompt`, `n_depth`). Differences from the script: each file is
//! one side (the script picks two `build_commit`s out of one database), and the
//! CPU column the script adds unless `ngl` is 99 is left out.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::output::{ParseError, read_results};
use crate::record::{TestResult, compare_test_name, fixed};
use crate::table::{Align, Table};

/// The properties that identify a test (`LLAMA_BENCH_KEY_PROPERTIES`).
pub const KEY_PROPERTIES: [&str; 25] = [
    "cpu_info",
    "gpu_info",
    "backends",
    "n_gpu_layers",
    "tensor_buft_overrides",
    "model_filename",
    "model_type",
    "n_batch",
    "n_ubatch",
    "embeddings",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "n_threads",
    "type_k",
    "type_v",
    "load_mode",
    "no_kv_offload",
    "split_mode",
    "main_gpu",
    "tensor_split",
    "flash_attn",
    "n_prompt",
    "n_gen",
    "n_depth",
];

/// Properties shown as `Yes`/`No`.
const BOOL_PROPERTIES: [&str; 4] = ["embeddings", "cpu_strict", "no_kv_offload", "flash_attn"];

/// The script's column title for a property.
pub fn pretty_name(property: &str) -> &str {
    match property {
        "cpu_info" => "CPU",
        "gpu_info" => "GPU",
        "backends" => "Backends",
        "n_gpu_layers" => "GPU layers",
        "tensor_buft_overrides" => "Tensor overrides",
        "model_filename" => "File",
        "model_type" => "Model",
        "n_batch" => "Batch size",
        "n_ubatch" => "Microbatch size",
        "embeddings" => "Embeddings",
        "cpu_mask" => "CPU mask",
        "cpu_strict" => "CPU strict",
        "poll" => "Poll",
        "n_threads" => "Threads",
        "type_k" => "K type",
        "type_v" => "V type",
        "load_mode" => "Load mode",
        "no_kv_offload" => "NKVO",
        "split_mode" => "Split mode",
        "main_gpu" => "Main GPU",
        "tensor_split" => "Tensor split",
        "flash_attn" => "FlashAttention",
        other => other,
    }
}

/// The script's shortening of model names (` - Medium` → `_M`, ...).
pub fn short_model_name(model_type: &str) -> String {
    model_type
        .replace(" - Small", "_S")
        .replace(" - Medium", "_M")
        .replace(" - Large", "_L")
}

/// A property's value as the table shows it.
fn shown_value(property: &str, value: &str) -> String {
    if BOOL_PROPERTIES.contains(&property) {
        return if value == "1" { "Yes" } else { "No" }.to_owned();
    }
    if property == "gpu_info" {
        let mut v = value.to_owned();
        for prefix in ["NVIDIA GeForce ", "Tesla ", "AMD Radeon "] {
            v = v.replace(prefix, "");
        }
        let names: Vec<&str> = v.split(", ").collect();
        if names.len() >= 2 && names.iter().all(|n| *n == names[0]) {
            return format!("{}x {}", names.len(), names[0]);
        }
        return v;
    }
    value.to_owned()
}

/// One matched test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCompareRow {
    /// Model description (`model_type`), shortened as the script shortens it.
    pub model: String,
    /// Model file.
    pub model_filename: String,
    /// Prompt tokens.
    pub n_prompt: i32,
    /// Generated tokens.
    pub n_gen: i32,
    /// Depth.
    pub n_depth: i32,
    /// The script's test name (`pp512`, `tg128@d4096`).
    pub test: String,
    /// Values of the extra columns, in [`SavedComparison::columns`] order.
    pub properties: Vec<String>,
    /// Mean `avg_ts` of side A.
    pub ts_a: f64,
    /// Mean `avg_ts` of side B.
    pub ts_b: f64,
    /// `ts_b / ts_a`.
    pub speedup: f64,
}

/// Two runs matched test by test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedComparison {
    /// Name of side A (the baseline).
    pub label_a: String,
    /// Name of side B.
    pub label_b: String,
    /// Key properties shown as extra columns (those that differ between rows).
    pub columns: Vec<String>,
    /// The matched tests.
    pub rows: Vec<SavedCompareRow>,
    /// Tests of A with no match in B (script test names).
    pub only_in_a: Vec<String>,
    /// Tests of B with no match in A.
    pub only_in_b: Vec<String>,
}

/// Why two runs could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] ParseError),
    /// No test of one run matches a test of the other.
    #[error("no comparable tests between {label_a} and {label_b}")]
    NothingInCommon {
        /// Side A.
        label_a: String,
        /// Side B.
        label_b: String,
    },
}

/// The key properties' values of a result, as text.
fn key(r: &TestResult) -> Vec<String> {
    KEY_PROPERTIES
        .iter()
        .map(|p| r.field_value(p).unwrap_or_default())
        .collect()
}

/// Per distinct key, in first-seen order: a representative result and the mean `avg_ts`.
fn grouped(results: &[TestResult]) -> Vec<(Vec<String>, &TestResult, f64)> {
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<String>, &TestResult, f64, usize)> = Vec::new();
    for r in results {
        let k = key(r);
        match index.get(&k) {
            Some(&i) => {
                groups[i].2 += r.avg_ts;
                groups[i].3 += 1;
            }
            None => {
                index.insert(k.clone(), groups.len());
                groups.push((k, r, r.avg_ts, 1));
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, r, sum, n)| (k, r, sum / n as f64))
        .collect()
}

/// Orders numbers numerically and anything else as text.
fn cmp_values(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

/// Compares two runs' results; `label_a` and `label_b` name the sides.
pub fn compare_results(
    a: &[TestResult],
    b: &[TestResult],
    label_a: &str,
    label_b: &str,
) -> Result<SavedComparison, CompareError> {
    let ga = grouped(a);
    let gb = grouped(b);
    let b_index: HashMap<&Vec<String>, usize> =
        gb.iter().enumerate().map(|(i, g)| (&g.0, i)).collect();
    let mut matched = Vec::new();
    let mut only_in_a = Vec::new();
    let mut b_used = vec![false; gb.len()];
    for (k, r, ts_a) in &ga {
        match b_index.get(k) {
            Some(&j) => {
                b_used[j] = true;
                matched.push((k, *r, *ts_a, gb[j].2));
            }
            None => only_in_a.push(compare_test_name(r.n_prompt, r.n_gen, r.n_depth)),
        }
    }
    let only_in_b = gb
        .iter()
        .zip(&b_used)
        .filter(|(_, used)| !**used)
        .map(|((_, r, _), _)| compare_test_name(r.n_prompt, r.n_gen, r.n_depth))
        .collect();
    if matched.is_empty() {
        return Err(CompareError::NothingInCommon {
            label_a: label_a.to_owned(),
            label_b: label_b.to_owned(),
        });
    }
    // Extra columns: key properties whose value differs between matched rows.
    let hidden = [
        "model_type",
        "model_filename",
        "n_prompt",
        "n_gen",
        "n_depth",
    ];
    let shown: Vec<usize> = (0..KEY_PROPERTIES.len())
        .filter(|&i| !hidden.contains(&KEY_PROPERTIES[i]))
        .filter(|&i| matched.iter().any(|m| m.0[i] != matched[0].0[i]))
        .collect();
    let model_i = KEY_PROPERTIES
        .iter()
        .position(|p| *p == "model_type")
        .unwrap_or(0);
    matched.sort_by(|x, y| {
        let by = |i: usize| cmp_values(&x.0[i], &y.0[i]);
        by(model_i)
            .then_with(|| {
                shown
                    .iter()
                    .fold(Ordering::Equal, |o, &i| o.then_with(|| by(i)))
            })
            .then_with(|| x.1.n_gen.cmp(&y.1.n_gen))
            .then_with(|| x.1.n_prompt.cmp(&y.1.n_prompt))
            .then_with(|| x.1.n_depth.cmp(&y.1.n_depth))
    });
    let rows = matched
        .into_iter()
        .map(|(k, r, ts_a, ts_b)| SavedCompareRow {
            model: short_model_name(&r.model_type),
            model_filename: r.model_filename.clone(),
            n_prompt: r.n_prompt,
            n_gen: r.n_gen,
            n_depth: r.n_depth,
            test: compare_test_name(r.n_prompt, r.n_gen, r.n_depth),
            properties: shown
                .iter()
                .map(|&i| shown_value(KEY_PROPERTIES[i], &k[i]))
                .collect(),
            ts_a,
            ts_b,
            speedup: ts_b / ts_a,
        })
        .collect();
    Ok(SavedComparison {
        label_a: label_a.to_owned(),
        label_b: label_b.to_owned(),
        columns: shown
            .iter()
            .map(|&i| KEY_PROPERTIES[i].to_owned())
            .collect(),
        rows,
        only_in_a,
        only_in_b,
    })
}

/// A side's name: its single `build_commit`, else the file's stem.
fn side_label(results: &[TestResult], path: &Path) -> String {
    let first = results
        .first()
        .map(|r| r.build_commit.as_str())
        .unwrap_or_default();
    if !first.is_empty() && results.iter().all(|r| r.build_commit == first) {
        return first.to_owned();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads two result files (format by extension: `.json`, `.jsonl`, `.csv`,
/// `.sql`, `.md`) and compares them. Sides are named by their build commit,
/// or by file stem when a file holds several builds or both share one (by
/// path when the stems are the same too).
pub fn compare_files(a: &Path, b: &Path) -> Result<SavedComparison, CompareError> {
    let ra = read_results(a)?;
    let rb = read_results(b)?;
    let (mut la, mut lb) = (side_label(&ra, a), side_label(&rb, b));
    if la == lb {
        let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
        (la, lb) = match (stem(a), stem(b)) {
            (Some(x), Some(y)) if x != y => (x, y),
            _ => (a.display().to_string(), b.display().to_string()),
        };
    }
    compare_results(&ra, &rb, &la, &lb)
}

impl SavedComparison {
    /// The comparison as the script's markdown table.
    pub fn to_markdown(&self) -> String {
        let mut cols = vec![("Model".to_owned(), Align::Left)];
        cols.extend(
            self.columns
                .iter()
                .map(|c| (pretty_name(c).to_owned(), Align::Left)),
        );
        cols.extend([
            ("Test".to_owned(), Align::Left),
            (format!("t/s {}", self.label_a), Align::Right),
            (format!("t/s {}", self.label_b), Align::Right),
            ("Speedup".to_owned(), Align::Right),
        ]);
        let mut table = Table::new(cols);
        for r in &self.rows {
            let mut cells = vec![r.model.clone()];
            cells.extend(r.properties.iter().cloned());
            cells.extend([
                r.test.clone(),
                fixed(r.ts_a, 2),
                fixed(r.ts_b, 2),
                fixed(r.speedup, 2),
            ]);
            table.push(cells);
        }
        table.render()
    }

    /// The comparison as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
