//! Markdown: upstream's table, `model | size | params | backend | [ngl] |
//! [parameters that vary or differ from their defaults] | test | t/s`, then a
//! `build: <commit> (<number>)` line.
//!
//! Column widths, alignment and names are upstream's; cells are padded by bytes
//! as C's `printf("%*s")` does (so the `t/s` column, whose `±` is two bytes,
//! gets one more byte of width, as upstream gives it).
//!
//! # What the reader recovers
//!
//! Only what the table shows: `model_type`, `model_size` and `model_n_params`
//! (to the two decimals shown), `backends`, every optional parameter column
//! (`ngl`, `threads`, `n_batch`, `fa`, ...), `n_prompt`/`n_gen`/`n_depth` from
//! the test name, `avg_ts`/`stddev_ts` (two decimals) from `t/s`, and
//! `build_commit`/`build_number` from the footer. Parameters without a column
//! take upstream's defaults (which is why the table omitted them), except
//! `n_threads`, whose default depends on the machine, which stays 0.
//! `model_filename`, `cpu_info`, `gpu_info`, `test_time`, `avg_ns`,
//! `stddev_ns` and the samples are not in the table and stay empty or 0.
//! Columns the reader does not know are ignored.

use std::io::{self, Write};

use super::{ParseError, Printer};
use crate::params::{BenchParams, OutputFormat, default_params};
use crate::record::{
    BuildInfo, FIELDS, FieldType, ModelInfo, SystemInfo, TestResult, field_type, fixed,
};

/// Upstream's markdown printer.
#[derive(Debug, Clone)]
pub struct MarkdownPrinter {
    fields: Vec<&'static str>,
    build: BuildInfo,
}

impl MarkdownPrinter {
    /// A printer with these columns (see [`markdown_fields`]) whose footer names `build`.
    pub fn new(fields: Vec<&'static str>, build: BuildInfo) -> Self {
        MarkdownPrinter { fields, build }
    }
}

/// Upstream's choice of columns: `model`, `size`, `params`, `backend`; `ngl`
/// unless the backend is a CPU one; each test parameter given more than one
/// value or a value other than its default (threads always on CPU backends);
/// then `test` and `t/s`.
///
/// `load_mode` and `lazy_mode` follow the same rule as the other parameters.
pub fn markdown_fields(params: &BenchParams, backends: &str) -> Vec<&'static str> {
    let d = default_params();
    let is_cpu = ["CPU", "BLAS", "ZenDNN"]
        .iter()
        .any(|b| backends.contains(b));
    let mut f = vec!["model", "size", "params", "backend"];
    let mut add = |name, show: bool| {
        if show {
            f.push(name);
        }
    };
    add("n_gpu_layers", !is_cpu);
    add("n_cpu_moe", params.n_cpu_moe != d.n_cpu_moe);
    add("n_threads", params.n_threads != d.n_threads || is_cpu);
    add("cpu_mask", params.cpu_mask != d.cpu_mask);
    add("cpu_strict", params.cpu_strict != d.cpu_strict);
    add("poll", params.poll != d.poll);
    add("n_batch", params.n_batch != d.n_batch);
    add("n_ubatch", params.n_ubatch != d.n_ubatch);
    add("type_k", params.type_k != d.type_k);
    add("type_v", params.type_v != d.type_v);
    add("main_gpu", params.main_gpu != d.main_gpu);
    add("split_mode", params.split_mode != d.split_mode);
    add("no_kv_offload", params.no_kv_offload != d.no_kv_offload);
    add("flash_attn", params.flash_attn != d.flash_attn);
    add("devices", params.devices != d.devices);
    add("tensor_split", params.tensor_split != d.tensor_split);
    add(
        "tensor_buft_overrides",
        params.tensor_buft_overrides != d.tensor_buft_overrides,
    );
    add("load_mode", params.load_mode != d.load_mode);
    add("lazy_mode", params.lazy_mode != d.lazy_mode);
    add("embeddings", params.embeddings != d.embeddings);
    add("no_op_offload", params.no_op_offload != d.no_op_offload);
    add("no_host", params.no_host != d.no_host);
    add("repack", params.repack != d.repack);
    add("fit_target", params.fit_target != d.fit_target);
    add("fit_min_ctx", params.fit_min_ctx != d.fit_min_ctx);
    f.push("test");
    f.push("t/s");
    f
}

/// Column width; negative means left-aligned (upstream's `get_field_width`).
fn field_width(field: &str) -> i32 {
    match field {
        "model" => -30,
        "t/s" => 20,
        "size" | "params" => 10,
        "n_gpu_layers" | "flash_attn" => 3,
        "n_threads" | "n_batch" => 7,
        "n_ubatch" => 8,
        "type_k" | "type_v" | "split_mode" | "repack" => 6,
        "devices" => -12,
        "test" => 15,
        "no_op_offload" | "no_host" => 4,
        _ => {
            let width = i32::try_from(field.len()).unwrap_or(i32::MAX).max(10);
            match field_type(field) {
                Some(FieldType::String) | None => -width,
                Some(_) => width,
            }
        }
    }
}

/// Column title (upstream's `get_field_display_name`).
fn display_name(field: &str) -> &str {
    match field {
        "n_gpu_layers" => "ngl",
        "split_mode" => "sm",
        "n_threads" => "threads",
        "no_kv_offload" => "nkvo",
        "flash_attn" => "fa",
        "embeddings" => "embd",
        "no_op_offload" => "nopo",
        "no_host" => "noh",
        "devices" => "dev",
        "tensor_split" => "ts",
        "tensor_buft_overrides" => "ot",
        "fit_target" => "fitt",
        "fit_min_ctx" => "fitc",
        "load_mode" => "lm",
        "lazy_mode" => "lzm",
        other => other,
    }
}

/// ` value |` padded to `width` bytes, right-aligned when `width > 0`.
fn cell(value: &str, width: i32) -> String {
    let w = width.unsigned_abs() as usize;
    let pad = " ".repeat(w.saturating_sub(value.len()));
    if width > 0 {
        format!(" {pad}{value} |")
    } else {
        format!(" {value}{pad} |")
    }
}

/// `3.56 GiB` or `512.00 MiB`.
fn size_text(bytes: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if bytes < 1 << 30 {
        format!("{:.2} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", bytes as f64 / GIB)
    }
}

/// `6.74 B` or `500.00 M`.
fn params_text(n: u64) -> String {
    if n < 1_000_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.2} B", n as f64 / 1e9)
    }
}

/// The text of `field` for `r`.
fn value(field: &str, r: &TestResult) -> String {
    match field {
        "model" => r.model_type.clone(),
        "size" => size_text(r.model_size),
        "params" => params_text(r.model_n_params),
        "backend" => r.backends.clone(),
        "test" => r.test_name(),
        "t/s" => format!("{} ± {}", fixed(r.avg_ts, 2), fixed(r.stddev_ts, 2)),
        other => r.field_value(other).unwrap_or_default(),
    }
}

impl Printer for MarkdownPrinter {
    fn print_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut head = String::from("|");
        let mut rule = String::from("|");
        for f in &self.fields {
            let w = field_width(f);
            head.push_str(&cell(display_name(f), w));
            let dashes = "-".repeat((w.unsigned_abs() as usize).saturating_sub(1));
            rule.push_str(&format!(" {dashes}{} |", if w > 0 { ':' } else { '-' }));
        }
        writeln!(out, "{head}")?;
        writeln!(out, "{rule}")
    }

    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()> {
        let mut line = String::from("|");
        for f in &self.fields {
            // The `±` is two bytes: one more byte of width, as upstream.
            let extra = i32::from(*f == "t/s");
            line.push_str(&cell(&value(f, result), field_width(f) + extra));
        }
        writeln!(out, "{line}")?;
        out.flush()
    }

    fn print_footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        writeln!(out, "build: {} ({})", self.build.commit, self.build.number)
    }
}

/// The field a column title stands for (`None` for unknown titles).
fn field_for_title(title: &str) -> Option<&'static str> {
    const SPECIAL: [&str; 6] = ["model", "size", "params", "backend", "test", "t/s"];
    if let Some(s) = SPECIAL.iter().find(|s| **s == title) {
        return Some(s);
    }
    FIELDS
        .iter()
        .map(|(n, _)| *n)
        .find(|n| display_name(n) == title || *n == title)
}

/// The cells of a table line `| a | b |`.
fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    inner.split('|').map(str::trim).collect()
}

/// Whether a line is a table rule (`| ---: | --- |`).
fn is_rule(line: &str) -> bool {
    let c = cells(line);
    !c.is_empty()
        && c.iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// A number followed by a unit among `units` (`3.56 GiB`) in base units.
fn scaled(text: &str, units: &[(&str, f64)]) -> Option<String> {
    let (num, unit) = text.trim().split_once(' ')?;
    let scale = units.iter().find(|(u, _)| *u == unit.trim())?.1;
    let v: f64 = num.parse().ok()?;
    Some(format!("{:.0}", (v * scale).round()))
}

/// `pp512`, `tg128`, `pp512+tg128`, with an optional ` @ d512`, as
/// `(n_prompt, n_gen, n_depth)`.
fn parse_test_name(text: &str) -> Option<(i32, i32, i32)> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (name, depth) = match compact.split_once('@') {
        Some((n, d)) => (n.to_owned(), d.strip_prefix('d')?.parse().ok()?),
        None => (compact, 0),
    };
    let mut pp = 0;
    let mut tg = 0;
    for part in name.split('+') {
        if let Some(n) = part.strip_prefix("pp") {
            pp = n.parse().ok()?;
        } else if let Some(n) = part.strip_prefix("tg") {
            tg = n.parse().ok()?;
        } else {
            return None;
        }
    }
    Some((pp, tg, depth))
}

/// The `(field, text)` pairs of one table cell.
fn cell_fields(field: &'static str, text: &str) -> Result<Vec<(&'static str, String)>, String> {
    const SIZE: [(&str, f64); 2] = [("MiB", 1_048_576.0), ("GiB", 1_073_741_824.0)];
    const COUNT: [(&str, f64); 2] = [("M", 1e6), ("B", 1e9)];
    let bad = || format!("cannot read {field} '{text}'");
    Ok(match field {
        "model" => vec![("model_type", text.to_owned())],
        "backend" => vec![("backends", text.to_owned())],
        "size" => vec![("model_size", scaled(text, &SIZE).ok_or_else(bad)?)],
        "params" => vec![("model_n_params", scaled(text, &COUNT).ok_or_else(bad)?)],
        "test" => {
            let (pp, tg, d) = parse_test_name(text).ok_or_else(bad)?;
            vec![
                ("n_prompt", pp.to_string()),
                ("n_gen", tg.to_string()),
                ("n_depth", d.to_string()),
            ]
        }
        "t/s" => {
            let (avg, sd) = text.split_once('±').ok_or_else(bad)?;
            vec![
                ("avg_ts", avg.trim().to_owned()),
                ("stddev_ts", sd.trim().to_owned()),
            ]
        }
        other => vec![(other, text.to_owned())],
    })
}

/// Upstream's defaults for every parameter field (what a hidden column means).
fn default_fields() -> Vec<(&'static str, String)> {
    let base = default_params()
        .instances()
        .first()
        .map_or_else(TestResult::default, |inst| {
            let mut r = TestResult::new(
                inst,
                &BuildInfo::default(),
                &SystemInfo::default(),
                &ModelInfo::default(),
            );
            r.n_threads = 0;
            r.model_filename.clear();
            r.test_time.clear();
            r
        });
    FIELDS
        .iter()
        .map(|(n, _)| *n)
        .zip(base.field_values())
        .collect()
}

/// Reads every markdown table in `text` (header, rule, rows) and the
/// `build: <commit> (<number>)` footer. See the module docs for what is recovered.
pub fn parse(text: &str) -> Result<Vec<TestResult>, ParseError> {
    let err = |line: usize, msg: String| ParseError::syntax(OutputFormat::Md, Some(line), msg);
    let lines: Vec<&str> = text.lines().collect();
    let defaults = default_fields();
    let mut rows: Vec<Vec<(&'static str, String)>> = Vec::new();
    let mut build: Option<(String, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("build:") {
            let (commit, number) = rest.trim().rsplit_once(' ').unwrap_or((rest.trim(), "(0)"));
            let number = number.trim_start_matches('(').trim_end_matches(')');
            build = Some((commit.trim().to_owned(), number.to_owned()));
            i += 1;
            continue;
        }
        if !(line.starts_with('|') && lines.get(i + 1).is_some_and(|l| is_rule(l))) {
            i += 1;
            continue;
        }
        let columns: Vec<Option<&'static str>> =
            cells(line).into_iter().map(field_for_title).collect();
        i += 2;
        while let Some(row) = lines
            .get(i)
            .map(|l| l.trim())
            .filter(|l| l.starts_with('|'))
        {
            let values = cells(row);
            if values.len() != columns.len() {
                let msg = format!("{} cells for {} columns", values.len(), columns.len());
                return Err(err(i + 1, msg));
            }
            let mut fields = defaults.clone();
            for (col, v) in columns.iter().zip(values) {
                if let Some(field) = col {
                    fields.extend(cell_fields(field, v).map_err(|m| err(i + 1, m))?);
                }
            }
            rows.push(fields);
            i += 1;
        }
    }
    rows.into_iter()
        .map(|mut fields| {
            if let Some((commit, number)) = &build {
                fields.push(("build_commit", commit.clone()));
                fields.push(("build_number", number.clone()));
            }
            TestResult::from_text_fields(fields.iter().map(|(f, v)| (*f, v.as_str())))
                .map_err(|m| ParseError::syntax(OutputFormat::Md, None, m))
        })
        .collect()
}
