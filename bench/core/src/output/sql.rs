//! SQL for SQLite: `CREATE TABLE IF NOT EXISTS llamacpp_bench (...)`, a blank line,
//! then one `INSERT` per result with every value single-quoted, as upstream
//! (meant to be piped into `sqlite3 llama-bench.sqlite`). Single quotes inside
//! values are doubled, which upstream does not do. No samples.
//!
//! The reader takes the `INSERT INTO <table> (columns) VALUES (...), ...`
//! statements and ignores every other statement; `NULL` leaves a field at its
//! default.

use std::io::{self, Write};

use super::{ParseError, Printer};
use crate::params::OutputFormat;
use crate::record::{FIELDS, TestResult};

/// Upstream's SQL printer.
#[derive(Debug, Default)]
pub struct SqlPrinter;

impl Printer for SqlPrinter {
    fn print_header(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "CREATE TABLE IF NOT EXISTS llamacpp_bench (")?;
        for (i, (name, ty)) in FIELDS.iter().enumerate() {
            let comma = if i + 1 < FIELDS.len() { "," } else { "" };
            writeln!(out, "  {name} {}{comma}", ty.sql())?;
        }
        writeln!(out, ");")?;
        writeln!(out)
    }

    fn print_test(&mut self, out: &mut dyn Write, result: &TestResult) -> io::Result<()> {
        let names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
        let values: Vec<String> = result
            .field_values()
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect();
        writeln!(
            out,
            "INSERT INTO llamacpp_bench ({}) VALUES ({});",
            names.join(", "),
            values.join(", ")
        )?;
        out.flush()
    }
}

/// A lexical token of the SQL subset read here.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Keyword or bare identifier.
    Word(String),
    /// `'text'` or `"identifier"` with its quote doubled inside.
    Quoted(char, String),
    /// Number or other bare value text.
    Bare(String),
    /// One of `( ) , ;`.
    Punct(char),
}

/// Splits SQL text into tokens with their 1-based line numbers.
fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let mut toks = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '(' | ')' | ',' | ';' => toks.push((line, Tok::Punct(c))),
            '\'' | '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(ParseError::syntax(
                                OutputFormat::Sql,
                                Some(start),
                                "unterminated quoted text",
                            ));
                        }
                        Some(q) if q == c => {
                            if chars.peek() == Some(&c) {
                                chars.next();
                                s.push(c);
                            } else {
                                break;
                            }
                        }
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            s.push(ch);
                        }
                    }
                }
                toks.push((start, Tok::Quoted(c, s)));
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "(),;'\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                let word = c.is_ascii_alphabetic() || c == '_';
                toks.push((line, if word { Tok::Word(s) } else { Tok::Bare(s) }));
            }
        }
    }
    Ok(toks)
}

/// A cursor over the tokens of one statement.
struct Stmt<'a> {
    toks: &'a [(usize, Tok)],
    pos: usize,
}

impl Stmt<'_> {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |(l, _)| *l)
    }
    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::syntax(OutputFormat::Sql, Some(self.line()), msg)
    }
    fn next(&mut self) -> Option<&Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t);
        self.pos += 1;
        t
    }
    fn expect_word(&mut self, word: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word) => Ok(()),
            _ => Err(self.err(format!("expected {word}"))),
        }
    }
    fn expect_punct(&mut self, p: char) -> Result<(), ParseError> {
        match self.next() {
            Some(Tok::Punct(c)) if *c == p => Ok(()),
            _ => Err(self.err(format!("expected '{p}'"))),
        }
    }
    /// `( item, item, ... )`, each item read by `item`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&Tok) -> Option<T>,
        what: &str,
    ) -> Result<Vec<T>, ParseError> {
        self.expect_punct('(')?;
        let mut out = Vec::new();
        loop {
            let value = self.next().and_then(&mut item);
            out.push(value.ok_or_else(|| self.err(format!("expected {what}")))?);
            match self.next() {
                Some(Tok::Punct(',')) => {}
                Some(Tok::Punct(')')) => return Ok(out),
                _ => return Err(self.err("expected ',' or ')'")),
            }
        }
    }
}

/// Reads the rows of one `INSERT` statement (after the `INSERT` keyword).
fn insert_rows(stmt: &mut Stmt<'_>) -> Result<Vec<TestResult>, ParseError> {
    stmt.expect_word("INTO")?;
    match stmt.next() {
        Some(Tok::Word(_) | Tok::Quoted('"', _)) => {}
        _ => return Err(stmt.err("expected a table name")),
    }
    let columns = stmt.list(
        |t| match t {
            Tok::Word(w) | Tok::Quoted('"', w) => Some(w.clone()),
            _ => None,
        },
        "a column name",
    )?;
    stmt.expect_word("VALUES")?;
    let mut rows = Vec::new();
    loop {
        let line = stmt.line();
        let values = stmt.list(
            |t| match t {
                Tok::Quoted('\'', s) | Tok::Bare(s) => Some(Some(s.clone())),
                Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Some(None),
                Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Some(Some("1".into())),
                Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Some(Some("0".into())),
                _ => None,
            },
            "a value",
        )?;
        if values.len() != columns.len() {
            return Err(ParseError::syntax(
                OutputFormat::Sql,
                Some(line),
                format!("{} values for {} columns", values.len(), columns.len()),
            ));
        }
        let pairs = columns
            .iter()
            .zip(&values)
            .filter_map(|(c, v)| v.as_deref().map(|v| (c.as_str(), v)));
        rows.push(
            TestResult::from_text_fields(pairs)
                .map_err(|e| ParseError::syntax(OutputFormat::Sql, Some(line), e))?,
        );
        match stmt.next() {
            Some(Tok::Punct(',')) => {}
            None => return Ok(rows),
            Some(_) => return Err(stmt.err("expected ',' or ';' after the values")),
        }
    }
}

/// Reads the rows of every `INSERT` statement in `text`.
pub fn parse(text: &str) -> Result<Vec<TestResult>, ParseError> {
    let toks = lex(text)?;
    let mut out = Vec::new();
    for stmt in toks.split(|(_, t)| *t == Tok::Punct(';')) {
        let mut cursor = Stmt { toks: stmt, pos: 0 };
        if let Some(Tok::Word(w)) = cursor.next()
            && w.eq_ignore_ascii_case("INSERT")
        {
            out.extend(insert_rows(&mut cursor)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inserts_and_skips_other_statements() {
        let text = "CREATE TABLE t (a TEXT);\n-- a comment; with a semicolon\n\
                    INSERT INTO llamacpp_bench (model_filename, n_prompt, avg_ts) VALUES \
                    ('it''s; here', '512', 1.5), ('b', 0, NULL);\nPRAGMA x;";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].model_filename, "it's; here");
        assert_eq!(rows[0].n_prompt, 512);
        assert_eq!(rows[0].avg_ts, 1.5);
        assert_eq!(rows[1].avg_ts, 0.0);
    }

    #[test]
    fn malformed_inserts_are_errors() {
        for bad in [
            "INSERT INTO t (a) VALUES ('1', '2');",
            "INSERT INTO t (a VALUES ('1');",
            "INSERT t (a) VALUES ('1');",
            "INSERT INTO t (n_prompt) VALUES ('x');",
            "INSERT INTO t (a) VALUES ('1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
