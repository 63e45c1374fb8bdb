//! JSON: one array of objects, laid out as upstream writes it (one field per
//! line, samples on one line each), so it streams: `[` first, `,` between
//! results, `]` at the end.

use std::io::{self, Write};

use super::{ParseError, Printer};
use crate::params::OutputFormat;
use crate::record::{FIELDS, FieldType, TestResult, general6};

/// Upstream's JSON printer.
#[derive(Debug, Default)]
pub struct JsonPrinter {
    printed_any: bool,
}

/// A JSON string literal, escaping `"`, `\` and control characters.
pub(super) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) <= 0x1f => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Each field's name and JSON value text, in order (upstream's `format_json_value`;
/// a rate that is not finite becomes `null`, which upstream would print as the
/// invalid `nan`).
pub(super) fn json_fields(result: &TestResult) -> Vec<(&'static str, String)> {
    FIELDS
        .iter()
        .zip(result.field_values())
        .map(|(&(name, ty), text)| {
            let value = match ty {
                FieldType::String => json_string(&text),
                FieldType::Bool => (if text == "0" { "false" } else { "true" }).to_owned(),
                FieldType::Float if text.parse::<f64>().map_or(true, |v| !v.is_finite()) => {
                    "null".to_owned()
                }
                FieldType::Int | FieldType::Float => text,
            };
            (name, value)
        })
        .collect()
}

/// `samples_ns` and `samples_ts` as upstream joins them (`a, b, c`).
pub(super) fn samples_text(result: &TestResult) -> (String, String) {
    let ns: Vec<String> = result.samples_ns.iter().map(u64::to_string).collect();
    let ts: Vec<String> = result.samples_ts.iter().map(|&t| general6(t)).collect();
    (ns.join(", "), ts.join(", "))
}

impl Printer for JsonPrinter {
    fn print_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "[")
    }

    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()> {
        if self.printed_any {
            writeln!(out, ",")?;
        }
        self.printed_any = true;
        writeln!(out, "  {{")?;
        for (name, value) in json_fields(result) {
            writeln!(out, "    \"{name}\": {value},")?;
        }
        let (ns, ts) = samples_text(result);
        writeln!(out, "    \"samples_ns\": [ {ns} ],")?;
        writeln!(out, "    \"samples_ts\": [ {ts} ]")?;
        write!(out, "  }}")?;
        out.flush()
    }

    fn print_footer(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        writeln!(out, "]")
    }
}

/// Reads a JSON array of results.
pub fn parse(text: &str) -> Result<Vec<TestResult>, ParseError> {
    serde_json::from_str(text)
        .map_err(|e| ParseError::syntax(OutputFormat::Json, Some(e.line()), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(json_string("a\"b\\c\nd é"), "\"a\\\"b\\\\c\\u000ad é\"");
    }

    #[test]
    fn empty_run_is_valid_json() {
        let text = super::super::render(&mut JsonPrinter::default(), &[]);
        assert_eq!(text, "[\n\n]\n");
        assert!(parse(&text).unwrap().is_empty());
    }

    #[test]
    fn bad_json_reports_a_line() {
        let err = parse("[\n{\"n_prompt\": }\n]").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
