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

use std::ffi::CStr;

use llamacpp_sys as sys;

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
    // Measured: about 300 bytes of stack per character of a name; 512 leaves margin.
    let stack = (16 << 20) + 512 * schema.len();
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
    let mut out: *mut std::ffi::c_char = std::ptr::null_mut();
    // SAFETY: `schema` is valid for its length; the shim catches every C++ exception and
    // always sets `out` (NULL or a malloc'd string we free below).
    let rc = unsafe {
        sys::llama_sys_json_schema_to_grammar(schema.as_ptr().cast(), schema.len(), &mut out)
    };
    if out.is_null() {
        return Err(Error::JsonSchema("out of memory".into()));
    }
    // SAFETY: the shim returned a NUL-terminated string it allocated.
    let text = unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: `out` came from the shim's allocator and is freed once.
    unsafe { sys::llama_sys_string_free(out) };
    if rc == 0 {
        Ok(text)
    } else {
        Err(Error::JsonSchema(text))
    }
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
