//! The jinja engine a model's chat template runs in: minijinja, set up the way Hugging Face
//! transformers sets up jinja2 for `apply_chat_template`, so a template written for Python
//! renders the same text here.
//!
//! What differs from a plain minijinja environment, and why:
//! - `trim_blocks` and `lstrip_blocks` on, trailing newline dropped: transformers' settings,
//!   which every template's whitespace is written against.
//! - `tojson` prints what Python's `json.dumps` prints (`", "` and `": "` separators,
//!   `ensure_ascii=False`, no HTML escaping): minijinja's own escapes `<`, `>` and `'`, which
//!   would put `\u003c` into prompts where models were trained on `<`.
//! - `raise_exception(msg)` fails the render with `msg`; `strftime_now(fmt)` formats a fixed
//!   or current local time.
//! - Python's string and dict methods (`startswith`, `split`, `items`, `get`, ...) through
//!   minijinja-contrib's pycompat callback.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Environment, Error as JinjaError, ErrorKind};

/// Instructions one rendering may run (minijinja's fuel).
const FUEL: u64 = 10_000_000;

/// The name the template is registered under in its environment.
pub(crate) const TEMPLATE_NAME: &str = "chat_template";

/// An environment holding `source` as [`TEMPLATE_NAME`], with the functions and filters chat
/// templates need; `strftime_now` sees `now` (the clock when `None`).
pub(crate) fn environment(
    source: &str,
    now: Option<SystemTime>,
) -> Result<Environment<'static>, JinjaError> {
    let mut env = Environment::new();
    // A template comes from the model file: a hostile one must end, not spin. Real templates
    // use a few hundred instructions per message; this allows conversations far beyond any
    // context length and still stops two nested `range(10**5)` loops long before they finish.
    env.set_fuel(Some(FUEL));
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    // minijinja iterates none as empty; Python does not, and templates test `tools is
    // iterable` to tell a list of tools from none.
    env.add_test("iterable", |v: &Value| {
        matches!(
            v.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::String
        )
    });
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<Value, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", move |fmt: String| strftime(now, &fmt));
    env.add_template_owned(TEMPLATE_NAME, source.to_owned())?;
    Ok(env)
}

/// `strftime_now`: local time, as Python's `datetime.now().strftime(fmt)`.
fn strftime(now: Option<SystemTime>, fmt: &str) -> Result<String, JinjaError> {
    use chrono::format::{Item, StrftimeItems};
    let time: chrono::DateTime<chrono::Local> = now.unwrap_or_else(SystemTime::now).into();
    // chrono's formatter fails (and `to_string` would panic) on an unknown specifier: check first.
    if StrftimeItems::new(fmt).any(|item| matches!(item, Item::Error)) {
        return Err(JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: bad format {fmt:?}"),
        ));
    }
    let mut out = String::new();
    write!(out, "{}", time.format_with_items(StrftimeItems::new(fmt))).map_err(|_| {
        JinjaError::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: cannot format {fmt:?}"),
        )
    })?;
    Ok(out)
}

/// A string-keyed map that keeps insertion order, as Python dicts do (messages, tools and
/// their JSON are iterated and printed in the order they were written).
#[derive(Debug)]
pub(crate) struct OrderedMap(pub(crate) Vec<(String, Value)>);

impl Object for OrderedMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.0
                .iter()
                .map(|(k, _)| Value::from(k.as_str()))
                .collect(),
        )
    }
}

/// A JSON value as a template value, objects in their key order.
pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) => Value::from(f),
            (None, None, None) => Value::from(n.to_string()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(a) => Value::from(a.iter().map(from_json).collect::<Vec<_>>()),
        serde_json::Value::Object(o) => map(o.iter().map(|(k, v)| (k.clone(), from_json(v)))),
    }
}

/// An ordered map value from key/value pairs.
pub(crate) fn map(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::from_object(OrderedMap(pairs.into_iter().collect()))
}

/// How `tojson` prints: Python's `json.dumps` options.
struct JsonStyle {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
    ensure_ascii: bool,
}

/// The `tojson` filter with transformers' signature: `indent`, `separators`, `sort_keys`,
/// `ensure_ascii` (default false), as keyword arguments or `indent` positionally.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<String, JinjaError> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_owned(),
            None => " ".repeat(v.as_i64().unwrap_or(0).max(0) as usize),
        }),
    };
    let separators: Option<Value> = kwargs.get("separators")?;
    let (item_sep, key_sep) = match separators.filter(|s| !s.is_none()) {
        Some(s) => {
            let item = s.get_item_by_index(0)?;
            let key = s.get_item_by_index(1)?;
            match (item.as_str(), key.as_str()) {
                (Some(i), Some(k)) => (i.to_owned(), k.to_owned()),
                _ => {
                    return Err(JinjaError::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ));
                }
            }
        }
        // Python drops the space after items when indenting (the newline separates them).
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
    };
    let style = JsonStyle {
        indent,
        item_sep,
        key_sep,
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(out)
}

/// Appends `value` as JSON, nested `depth` levels deep.
fn write_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    depth: usize,
) -> Result<(), JinjaError> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.is_integer() {
                out.push_str(&value.to_string());
            } else {
                let f = f64::try_from(value.clone())?;
                out.push_str(&py_float(f));
            }
        }
        ValueKind::String => write_str(out, value.as_str().unwrap_or_default(), style),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, style, depth, '[', ']', &items, |out, v| {
                write_json(out, v, style, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if style.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            write_container(out, style, depth, '{', '}', &keys, |out, k| {
                let name = match k.as_str() {
                    Some(s) => s.to_owned(),
                    None => json_key(k),
                };
                write_str(out, &name, style);
                out.push_str(&style.key_sep);
                write_json(out, &value.get_item(k)?, style, depth + 1)
            })?;
        }
        _ => {
            return Err(JinjaError::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a {} is not JSON serializable", value.kind()),
            ));
        }
    }
    Ok(())
}

/// A non-string dict key as Python's json module writes it.
fn json_key(k: &Value) -> String {
    match k.kind() {
        ValueKind::None | ValueKind::Undefined => "null".to_owned(),
        ValueKind::Bool if k.is_true() => "true".to_owned(),
        ValueKind::Bool => "false".to_owned(),
        _ => k.to_string(),
    }
}

/// `[a, b]` / `{..}` with Python's separators and indentation.
fn write_container<T>(
    out: &mut String,
    style: &JsonStyle,
    depth: usize,
    open: char,
    close: char,
    items: &[T],
    mut each: impl FnMut(&mut String, &T) -> Result<(), JinjaError>,
) -> Result<(), JinjaError> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_sep);
        }
        if let Some(indent) = &style.indent {
            out.push('\n');
            out.push_str(&indent.repeat(depth + 1));
        }
        each(out, item)?;
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(depth));
    }
    out.push(close);
    Ok(())
}

/// What `tojson` writes between the quotes of a string (Python's escapes, non-ASCII kept).
pub(crate) fn json_string_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let style = JsonStyle {
        indent: None,
        item_sep: String::new(),
        key_sep: String::new(),
        sort_keys: false,
        ensure_ascii: false,
    };
    write_str(&mut out, s, &style);
    out.pop();
    out.remove(0);
    out
}

/// A JSON string literal, escaped as Python's json module escapes.
fn write_str(out: &mut String, s: &str, style: &JsonStyle) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (style.ensure_ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it (what `json.dumps` prints): shortest round-trip
/// digits, a `.0` on whole numbers, exponent form below 1e-4 and from 1e16 on.
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: Value) -> Result<String, JinjaError> {
        let env = environment(src, Some(SystemTime::UNIX_EPOCH))?;
        env.get_template(TEMPLATE_NAME)?.render(ctx)
    }

    #[test]
    fn tojson_prints_like_python_json_dumps() {
        // Keys in insertion order (not sorted), as a Python dict keeps them.
        let v = map([
            (
                "b".to_owned(),
                from_json(&serde_json::json!([1, 2.5, 1e20, 0.00001, true, null])),
            ),
            ("a".to_owned(), Value::from("<tag> 'q' \"d\" é\n")),
        ]);
        let ctx = map([("v".to_owned(), v)]);
        assert_eq!(
            render("{{ v | tojson }}", ctx.clone()).unwrap(),
            r#"{"b": [1, 2.5, 1e+20, 1e-05, true, null], "a": "<tag> 'q' \"d\" é\n"}"#
        );
        assert_eq!(
            render("{{ v.b[:2] | tojson(indent=2) }}", ctx.clone()).unwrap(),
            "[\n  1,\n  2.5\n]"
        );
        assert_eq!(
            render("{{ v.a | tojson(ensure_ascii=true) }}", ctx).unwrap(),
            r#""<tag> 'q' \"d\" \u00e9\n""#
        );
    }

    #[test]
    fn endless_templates_run_out_of_fuel() {
        let src =
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
        let env = environment(src, None).unwrap();
        let err = env
            .get_template(TEMPLATE_NAME)
            .unwrap()
            .render(Value::from(()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel);
    }

    #[test]
    fn raise_exception_and_strftime_now() {
        let err = render("{{ raise_exception('bad role') }}", Value::from(())).unwrap_err();
        assert!(err.to_string().contains("bad role"), "{err}");
        // The epoch, in whatever zone the test runs: the year is 1969 or 1970.
        let year = render("{{ strftime_now('%Y') }}", Value::from(())).unwrap();
        assert!(year == "1970" || year == "1969", "{year}");
        assert!(render("{{ strftime_now('%Q') }}", Value::from(())).is_err());
    }

    #[test]
    fn python_methods_and_blocks_trim_like_transformers() {
        let src = "{% for m in msgs %}\n  {% if m.startswith('a') %}{{ m.upper() }}{% endif %}\n{% endfor %}";
        let msgs = Value::from(vec!["ab", "cd", "ae"]);
        let out = render(src, map([("msgs".to_owned(), msgs)])).unwrap();
        assert_eq!(out, "ABAE");
        let iterable = "{{ a is iterable }} {{ b is iterable }} {{ c is iterable }}";
        let ctx = map([
            ("a".to_owned(), Value::from(())),
            ("b".to_owned(), Value::from(vec![1])),
            ("c".to_owned(), Value::from("s")),
        ]);
        assert_eq!(render(iterable, ctx).unwrap(), "False True True");
    }
}
