//! Grammars from JSON schemas, with llama.cpp's own converter
//! (`common/json-schema-to-grammar.cpp` of the pinned tree, compiled into
//! `llamacpp-sys`'s shim).
//!
//! The converter handles what llama.cpp's server accepts in `json_schema`:
//! `type` (object, array, string, number, integer, boolean, null, and lists of
//! them), `properties`/`required`/`additionalProperties`, `items`/`prefixItems`/
//! `minItems`/`maxItems`, `enum`/`const`, `anyOf`/`oneOf`/`allOf`, `$ref`s into
//! the same document (`#/...`, cycles allowed), string `minLength`/`maxLength`/
//! `pattern` and `format` (date, time, date-time, uuid), integer
//! `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`. Keywords it does
//! not know are ignored, so the grammar may accept more than the schema does.

use crate::error::{Error, Result};

/// Longest schema text accepted, in bytes. The converter's regexes recurse
/// once per character of a name, so stack use grows with the text (see
/// [`json_schema_to_grammar`]); real schemas are far smaller.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// Deepest nesting of JSON arrays/objects accepted. The converter recurses per
/// level, and its output grows with the square of the depth.
pub const MAX_SCHEMA_DEPTH: usize = 128;

/// Converts a JSON schema (JSON text) to a GBNF grammar rooted at `root`, for
/// [`SamplerBuilder::grammar`](crate::SamplerBuilder::grammar).
///
/// Invalid JSON, a schema the converter rejects (unresolved `$ref`, invalid
/// `pattern`, ...), a text over [`MAX_SCHEMA_BYTES`] or nesting deeper than
/// [`MAX_SCHEMA_DEPTH`] are [`Error::JsonSchema`]. The conversion runs on a
/// helper thread whose stack is sized for the text. Unsupported features that
/// only widen the grammar are reported by the converter on stderr.
///
/// ```no_run
/// # fn demo(model: &llamacpp::Model) -> llamacpp::Result<()> {
/// let schema = r#"{"type": "object",
///     "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
///     "required": ["name", "age"]}"#;
/// let gbnf = llamacpp::grammar::json_schema_to_grammar(schema)?;
/// let chain = llamacpp::SamplerChain::builder(model.vocab()).grammar(&gbnf, "root").greedy().build()?;
/// # Ok(()) }
/// ```
pub fn json_schema_to_grammar(schema: &str) -> Result<String> {
    if schema.len() > MAX_SCHEMA_BYTES {
        return Err(Error::JsonSchema(format!(
            "schema is {} bytes, more than the {MAX_SCHEMA_BYTES} accepted",
            schema.len()
        )));
    }
    let depth = nesting_depth(schema);
    if depth > MAX_SCHEMA_DEPTH {
        return Err(Error::JsonSchema(format!(
            "schema nests {depth} levels deep, more than the {MAX_SCHEMA_DEPTH} accepted"
        )));
    }
    // Measured: about 300 bytes of stack per character of a name in an optimised build, and
    // several times that with AddressSanitizer's redzones (.ci/sanitize); 2 KiB covers both.
    // Only touched pages are committed, so the worst case (256 KiB of schema, 528 MiB) is
    // address space, not memory.
    let stack = (16 << 20) + 2048 * schema.len();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("json-schema-to-grammar".into())
            .stack_size(stack)
            .spawn_scoped(s, || convert(schema))
            .map_err(|e| Error::JsonSchema(format!("cannot start the converter thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(Error::JsonSchema("the converter panicked".into())))
    })
}

fn convert(schema: &str) -> Result<String> {
    match crate::raw::shim::json_schema_to_grammar(schema) {
        None => Err(Error::JsonSchema("out of memory".into())),
        Some(Ok(text)) => Ok(text),
        Some(Err(message)) => Err(Error::JsonSchema(message)),
    }
}

/// Deepest nesting of parenthesised groups a GBNF grammar may have. llama.cpp's parser
/// recurses per group, and so do its grammar walks while sampling (each group is a rule);
/// measured, about 5000 levels overflow a 2 MiB thread stack.
pub const MAX_GRAMMAR_NESTING: usize = 256;

/// Most rules a GBNF grammar may define (`::=` lines plus parenthesised groups, each of
/// which llama.cpp turns into a rule). Its walks recurse along chains of rules that start
/// with another rule, on the sampling thread's stack, so a long chain overflows it
/// (measured: about 20000 rules on a 2 MiB thread stack).
pub const MAX_GRAMMAR_RULES: usize = 4096;

/// Checks GBNF text for what llama.cpp's parser cannot survive, before it sees the text:
/// a repetition `x{m,n}` with `m > n` (it then generates rules without end, until memory
/// runs out), parentheses nested deeper than [`MAX_GRAMMAR_NESTING`] or more than
/// [`MAX_GRAMMAR_RULES`] rules (both overflow the stack). Anything else is left to the
/// parser, which reports syntax errors itself.
pub(crate) fn check_gbnf(text: &str) -> Result<()> {
    let b = text.as_bytes();
    let err = |msg: String| Err(Error::Grammar(msg));
    let (mut i, mut depth, mut max_depth, mut rules) = (0usize, 0usize, 0usize, 0usize);
    // Skips a quoted run (string, character class, token) from its opening byte to just
    // past the unescaped `close`, or to the end of the text.
    let skip_quoted = |mut j: usize, close: u8| {
        j += 1;
        while j < b.len() && b[j] != close {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        j + 1
    };
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => i = skip_quoted(i, b'"'),
            b'[' => i = skip_quoted(i, b']'),
            b'<' => i = skip_quoted(i, b'>'),
            b'(' => {
                depth += 1;
                rules += 1;
                max_depth = max_depth.max(depth);
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b':' if b[i..].starts_with(b"::=") => {
                rules += 1;
                i += 3;
            }
            b'{' => {
                let (min, max, end) = repetition(b, i + 1);
                if let (Some(m), Some(n)) = (min, max)
                    && m > n
                {
                    return err(format!(
                        "repetition {{{m},{n}}} has a minimum above its maximum"
                    ));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    if max_depth > MAX_GRAMMAR_NESTING {
        return err(format!(
            "parentheses nest {max_depth} deep, more than the {MAX_GRAMMAR_NESTING} accepted"
        ));
    }
    if rules > MAX_GRAMMAR_RULES {
        return err(format!(
            "{rules} rules and groups, more than the {MAX_GRAMMAR_RULES} accepted"
        ));
    }
    Ok(())
}

/// Reads the bounds of a repetition whose `{` is just before `at`: `(min, max, end)`, with
/// `max` `None` for `{m,}` and `{m}` (which cannot be inverted), and `end` where scanning
/// goes on. Malformed bounds are left to llama.cpp's parser.
fn repetition(b: &[u8], at: usize) -> (Option<u128>, Option<u128>, usize) {
    let space = |mut j: usize| {
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        j
    };
    // Saturating: a bound too large for u128 is still compared correctly against a small one.
    let int = |mut j: usize| {
        let mut v: Option<u128> = None;
        while j < b.len() && b[j].is_ascii_digit() {
            let d = u128::from(b[j] - b'0');
            v = Some(v.unwrap_or(0).saturating_mul(10).saturating_add(d));
            j += 1;
        }
        (v, j)
    };
    let (min, j) = int(space(at));
    let j = space(j);
    if min.is_none() || b.get(j) != Some(&b',') {
        return (min, None, j);
    }
    let (max, j) = int(space(j + 1));
    (min, max, j)
}

/// The deepest nesting of `[`/`{` outside strings (invalid JSON is left to the parser).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(r#"{"a": [1, {"b": "[[[\"{{"}]}"#), 3);
        assert_eq!(nesting_depth("[]"), 1);
        assert_eq!(nesting_depth("1"), 0);
    }

    #[test]
    fn gbnf_checks_see_repetitions_outside_literals_only() {
        assert!(check_gbnf("root ::= \"a\"{5,2}").is_err());
        assert!(check_gbnf("root ::= \"a\"{ 5 , 2 }").is_err());
        assert!(check_gbnf("root ::= \"a\"{99999999999999999999999999999999999999999,1}").is_err());
        assert!(check_gbnf("root ::= \"a\"{2,5} \"b\"{3} \"c\"{1,}").is_ok());
        assert!(check_gbnf("root ::= \"{5,2}\" [{5,2}] # {5,2}\n").is_ok());
        assert!(check_gbnf("root ::= \"\\\"{5,2}\"").is_ok());
        let deep = |n: usize| format!("root ::= {}\"a\"{}", "(".repeat(n), ")".repeat(n));
        assert!(check_gbnf(&deep(MAX_GRAMMAR_NESTING)).is_ok());
        assert!(check_gbnf(&deep(MAX_GRAMMAR_NESTING + 1)).is_err());
        assert!(check_gbnf(&"x ::= \"(\"\n".repeat(MAX_GRAMMAR_RULES)).is_ok());
        assert!(check_gbnf(&"x ::= \"a\"\n".repeat(MAX_GRAMMAR_RULES + 1)).is_err());
    }

    #[test]
    fn limits_are_errors() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            json_schema_to_grammar(&deep),
            Err(Error::JsonSchema(_))
        ));
        let big = format!("{{\"description\": \"{}\"}}", "x".repeat(MAX_SCHEMA_BYTES));
        assert!(matches!(
            json_schema_to_grammar(&big),
            Err(Error::JsonSchema(_))
        ));
    }
}
