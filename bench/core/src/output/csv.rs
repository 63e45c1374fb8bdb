//! CSV: a header line of field names, then one line per result with every
//! value double-quoted (`"` doubled inside). No samples.
//!
//! The reader maps columns by header name, so files from other upstream
//! revisions (extra or missing columns) load too; it accepts unquoted fields
//! and quoted fields spanning lines.

use std::io::{self, Write};

use super::{ParseError, Printer};
use crate::params::OutputFormat;
use crate::record::{FIELDS, TestResult};

/// Upstream's CSV printer.
#[derive(Debug, Default)]
pub struct CsvPrinter;

/// `value` in double quotes, inner quotes doubled.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

impl Printer for CsvPrinter {
    fn print_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
        writeln!(out, "{}", names.join(","))
    }

    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()> {
        let values: Vec<String> = result.field_values().iter().map(|v| quote(v)).collect();
        writeln!(out, "{}", values.join(","))?;
        out.flush()
    }
}

/// Splits CSV text into records of fields, with the 1-based line each starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, ParseError> {
    let err = |line, msg: &str| ParseError::syntax(OutputFormat::Csv, Some(line), msg);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        return Err(err(start, "unterminated quoted field"));
                    }
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(c) if quoted => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(c) => field.push(c),
            }
        }
        if !(fields.len() == 1 && fields[0].is_empty()) {
            out.push((start, fields));
        }
    }
    Ok(out)
}

/// Reads CSV text (a header line, then one line per result).
pub fn parse(text: &str) -> Result<Vec<TestResult>, ParseError> {
    let mut rows = records(text)?.into_iter();
    let Some((_, header)) = rows.next() else {
        return Ok(Vec::new());
    };
    rows.map(|(line, values)| {
        if values.len() != header.len() {
            return Err(ParseError::syntax(
                OutputFormat::Csv,
                Some(line),
                format!("{} values for {} columns", values.len(), header.len()),
            ));
        }
        let pairs = header
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(String::as_str));
        TestResult::from_text_fields(pairs)
            .map_err(|e| ParseError::syntax(OutputFormat::Csv, Some(line), e))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_multiline_fields() {
        let text = "a,b,c\n\"x,1\",\"say \"\"hi\"\"\",plain\r\n\"two\nlines\",,\"\"\n";
        let recs = records(text).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].1, ["x,1", "say \"hi\"", "plain"]);
        assert_eq!(
            recs[2],
            (3, vec!["two\nlines".into(), String::new(), String::new()])
        );
        assert!(records("\"open").is_err());
    }

    #[test]
    fn column_count_mismatch_is_an_error() {
        let err = parse("n_prompt,n_gen\n\"1\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
