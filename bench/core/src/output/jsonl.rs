//! JSON Lines: one object per result per line, as upstream writes it.

use std::io::{self, Write};

use super::json::{json_fields, samples_text};
use super::{ParseError, Printer};
use crate::params::OutputFormat;
use crate::record::TestResult;

/// Upstream's JSONL printer.
#[derive(Debug, Default)]
pub struct JsonlPrinter;

impl Printer for JsonlPrinter {
    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()> {
        write!(out, "{{")?;
        for (name, value) in json_fields(result) {
            write!(out, "\"{name}\": {value}, ")?;
        }
        let (ns, ts) = samples_text(result);
        write!(out, "\"samples_ns\": [ {ns} ],")?;
        write!(out, "\"samples_ts\": [ {ts} ]")?;
        writeln!(out, "}}")?;
        out.flush()
    }
}

/// Reads one JSON object per non-blank line.
pub fn parse(text: &str) -> Result<Vec<TestResult>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| ParseError::syntax(OutputFormat::Jsonl, Some(i + 1), e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_errors_located() {
        assert_eq!(parse("\n{\"n_gen\": 16}\n\n").unwrap()[0].n_gen, 16);
        let err = parse("{\"n_gen\": 16}\n{oops}\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
