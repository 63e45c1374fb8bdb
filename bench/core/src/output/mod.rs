//! Result printers (one per `-o` format) and the readers that parse them back.
//!
//! Printers stream: [`Printer::print_header`] once, [`Printer::print_test`] as
//! each result comes in, [`Printer::print_footer`] at the end. Output is
//! upstream's byte for byte, with two deliberate differences: SQL doubles single
//! quotes inside values (upstream writes them raw, which breaks the statement),
//! and JSON escapes only real control characters (upstream also mangles bytes
//! above 0x7f on platforms where `char` is signed).
//!
//! Readers: [`parse`] turns any format's text back into results. CSV, JSON,
//! JSONL and SQL recover every field they carry (CSV and SQL carry no samples);
//! markdown recovers only what the table shows, see [`md`].

pub mod csv;
pub mod json;
pub mod jsonl;
pub mod md;
pub mod sql;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::params::{BenchParams, OutputFormat};
use crate::record::{BuildInfo, TestResult};

/// Writes results in one format, header and footer included.
pub trait Printer {
    /// Writes what comes before the first result (CSV header, `[`, table head...).
    fn print_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let _ = out;
        Ok(())
    }

    /// Writes one result and flushes, so results appear as tests finish.
    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()>;

    /// Writes what comes after the last result (`]`, the markdown build line...).
    fn print_footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let _ = out;
        Ok(())
    }
}

/// The printer for `format` (`None` for [`OutputFormat::None`]).
///
/// The markdown printer chooses its columns from `params` and `backends` (the
/// run's `backends` value) as upstream does, and ends with `build`.
pub fn create_printer(
    format: OutputFormat,
    params: &BenchParams,
    backends: &str,
    build: &BuildInfo,
) -> Option<Box<dyn Printer>> {
    match format {
        OutputFormat::None => None,
        OutputFormat::Csv => Some(Box::new(csv::CsvPrinter)),
        OutputFormat::Json => Some(Box::new(json::JsonPrinter::default())),
        OutputFormat::Jsonl => Some(Box::new(jsonl::JsonlPrinter)),
        OutputFormat::Md => Some(Box::new(md::MarkdownPrinter::new(
            md::markdown_fields(params, backends),
            build.clone(),
        ))),
        OutputFormat::Sql => Some(Box::new(sql::SqlPrinter)),
    }
}

/// Runs `printer` over `results` (header, every result, footer) into a string.
pub fn render(printer: &mut dyn Printer, results: &[TestResult]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = printer.print_header(&mut out);
    for r in results {
        let _ = printer.print_test(&mut out, r);
    }
    let _ = printer.print_footer(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Why results could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not valid in the format.
    #[error("{format}: {}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Syntax {
        /// The format being read.
        format: OutputFormat,
        /// 1-based line of the problem, where known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file's extension names no format.
    #[error("{}: unknown result format (expected .json, .jsonl, .csv, .sql or .md)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// `none` has no reader.
    #[error("there is nothing to read in format none")]
    NoFormat,
}

impl ParseError {
    /// A syntax error at `line` (1-based) of a `format` text.
    pub(crate) fn syntax(
        format: OutputFormat,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        ParseError::Syntax {
            format,
            line,
            message: message.into(),
        }
    }
}

/// Parses `text` written in `format` back into results.
pub fn parse(format: OutputFormat, text: &str) -> Result<Vec<TestResult>, ParseError> {
    match format {
        OutputFormat::None => Err(ParseError::NoFormat),
        OutputFormat::Csv => csv::parse(text),
        OutputFormat::Json => json::parse(text),
        OutputFormat::Jsonl => jsonl::parse(text),
        OutputFormat::Md => md::parse(text),
        OutputFormat::Sql => sql::parse(text),
    }
}

/// Reads a results file, choosing the format by extension (`.json`, `.jsonl`,
/// `.csv`, `.sql`, `.md`).
pub fn read_results(path: &Path) -> Result<Vec<TestResult>, ParseError> {
    let format = OutputFormat::from_path(path).ok_or_else(|| ParseError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| ParseError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(format, &text)
}

#[cfg(test)]
mod tests;
