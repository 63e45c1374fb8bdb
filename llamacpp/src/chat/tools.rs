//! Tool calls: parse them out of replies, constrain generation to valid ones.
//!
//! Three wire formats are known ([`ToolCallFormat`]). For each, [`parse_tool_calls`] turns a
//! reply into its text and its calls, and [`tool_call_grammar`] builds a GBNF grammar that
//! accepts exactly the calls of the given tools (the name one of theirs, the arguments
//! matching that tool's JSON schema), with the triggers that make it lazy: free text until the
//! model opens a call, then only a valid call.

use serde_json::{Map, Value};

use crate::chat::{ChatTemplate, Tool, ToolCall};
use crate::error::{Error, Result};
use crate::grammar::json_schema_to_grammar;
use crate::{SamplerBuilder, Token, Vocab};

/// How a model writes its tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolCallFormat {
    /// Hermes style, used by Qwen 2.5, Qwen3, Qwen3-Next and Hermes models: each call is
    /// `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, possibly several,
    /// possibly after some text.
    Hermes,
    /// Llama 3.1/3.2/3.3 JSON calls: the whole reply is `{"name": ..., "parameters": {...}}`
    /// (`"arguments"` is accepted too), optionally after `<|python_tag|>`.
    Llama3Json,
    /// OpenAI gpt-oss (harmony): `<|channel|>commentary to=functions.NAME <|constrain|>json
    /// <|message|>{...}<|call|>` (or the recipient in the header:
    /// ` to=functions.NAME<|channel|>commentary json<|message|>{...}`).
    GptOss,
}

/// Opening and closing markers of a Hermes call.
const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
/// Llama 3's marker before a call (a control token in Llama 3 vocabularies).
const PYTHON_TAG: &str = "<|python_tag|>";
/// gpt-oss: what names the function a message goes to, and the markers around its arguments.
const HARMONY_TO: &str = "to=functions.";
const HARMONY_MESSAGE: &str = "<|message|>";
const HARMONY_CALL: &str = "<|call|>";

impl ToolCallFormat {
    /// The format `template` writes tool calls in (see [`detect_source`](Self::detect_source)).
    ///
    /// ```
    /// use llamacpp::chat::{ChatTemplate, ToolCallFormat};
    /// let t = ChatTemplate::builtin("chatml");
    /// assert_eq!(ToolCallFormat::detect(&t), None);
    /// ```
    pub fn detect(template: &ChatTemplate) -> Option<ToolCallFormat> {
        Self::detect_source(template.source())
    }

    /// The format a chat template writes tool calls in, judged from the markers in its text;
    /// `None` when it shows none of the known ones (or a known marker used differently, like
    /// Qwen3-Coder's `<tool_call><function=...>` XML calls).
    ///
    /// ```
    /// use llamacpp::chat::ToolCallFormat;
    /// let src = "{% for m in messages %}{{ '<tool_call>' }}{% endfor %}";
    /// assert_eq!(ToolCallFormat::detect_source(src), Some(ToolCallFormat::Hermes));
    /// assert_eq!(ToolCallFormat::detect_source("{{ messages }}"), None);
    /// ```
    pub fn detect_source(source: &str) -> Option<ToolCallFormat> {
        if source.contains("<function=") {
            // XML-style calls inside <tool_call>: not a format this module writes or reads.
            return None;
        }
        if source.contains(HERMES_OPEN) {
            return Some(ToolCallFormat::Hermes);
        }
        if source.contains("<|channel|>") && source.contains("functions.") {
            return Some(ToolCallFormat::GptOss);
        }
        let llama3 = source.contains("<|start_header_id|>");
        if llama3 && (source.contains(PYTHON_TAG) || source.contains("\"parameters\"")) {
            return Some(ToolCallFormat::Llama3Json);
        }
        None
    }

    /// The opening marker a call starts with, when it is one fixed string.
    fn marker(self) -> Option<&'static str> {
        match self {
            ToolCallFormat::Hermes => Some(HERMES_OPEN),
            ToolCallFormat::Llama3Json => Some(PYTHON_TAG),
            ToolCallFormat::GptOss => None,
        }
    }
}

/// A reply split into its text and its tool calls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedReply {
    /// The text outside the calls (trimmed; pieces between calls joined by newlines).
    pub content: String,
    /// The calls, in order. Formats without call ids get `call_0`, `call_1`, ...
    pub tool_calls: Vec<ToolCall>,
}

/// Splits a model's reply into text and tool calls written in `format`.
///
/// `reply` is the generated text with special tokens rendered (`Vocab::piece(t, true)`), so
/// that markers such as `<|python_tag|>` are visible. A reply without calls is `Ok` with no
/// calls. A call marker followed by JSON that does not parse, or by an object without a
/// `name`, is [`Error::ToolCall`] saying which call and where. Arguments written as a JSON
/// string holding an object are unwrapped; missing arguments are `{}`.
///
/// ```
/// use llamacpp::chat::{parse_tool_calls, ToolCallFormat};
/// let reply = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
/// let parsed = parse_tool_calls(ToolCallFormat::Hermes, reply)?;
/// assert_eq!(parsed.content, "Let me look.");
/// assert_eq!(parsed.tool_calls[0].name, "get_weather");
/// assert_eq!(parsed.tool_calls[0].arguments["city"], "Paris");
/// assert_eq!(parsed.tool_calls[0].id.as_deref(), Some("call_0"));
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub fn parse_tool_calls(format: ToolCallFormat, reply: &str) -> Result<ParsedReply> {
    match format {
        ToolCallFormat::Hermes => parse_hermes(reply),
        ToolCallFormat::Llama3Json => parse_llama3(reply),
        ToolCallFormat::GptOss => parse_gpt_oss(reply),
    }
}

fn parse_hermes(reply: &str) -> Result<ParsedReply> {
    let mut text = Vec::new();
    let mut calls = Vec::new();
    let mut rest = reply;
    while let Some(at) = rest.find(HERMES_OPEN) {
        text.push(&rest[..at]);
        let after = &rest[at + HERMES_OPEN.len()..];
        // A reply cut off before the closing tag still holds a complete call if its JSON is.
        let (body, next) = match after.find(HERMES_CLOSE) {
            Some(end) => (&after[..end], &after[end + HERMES_CLOSE.len()..]),
            None => (after, ""),
        };
        let value = parse_json(body.trim(), calls.len())?;
        calls.push(call_from_object(
            value,
            calls.len(),
            &["arguments", "parameters"],
        )?);
        rest = next;
    }
    text.push(rest);
    Ok(ParsedReply {
        content: join_text(&text),
        tool_calls: calls,
    })
}

fn parse_llama3(reply: &str) -> Result<ParsedReply> {
    let start = reply.trim_start();
    let (tagged, body) = match start.strip_prefix(PYTHON_TAG) {
        Some(b) => (true, b.trim_start()),
        None => (false, start),
    };
    if !body.starts_with('{') {
        if tagged {
            return Err(Error::ToolCall(format!(
                "call 0: expected a JSON object after {PYTHON_TAG} (built-in python-style calls are not supported), found `{}`",
                snippet(body)
            )));
        }
        return Ok(ParsedReply {
            content: reply.trim().to_string(),
            tool_calls: Vec::new(),
        });
    }
    // One object, or several separated by `;` (what Llama 3.2 writes for parallel calls).
    let mut calls = Vec::new();
    let mut rest = body;
    loop {
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        let value = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(json_error(calls.len(), rest, &e)),
            None => break,
        };
        let used = stream.byte_offset();
        if calls.is_empty() && !tagged && value.get("name").is_none() {
            // A JSON answer that is not shaped like a call is the answer itself.
            return Ok(ParsedReply {
                content: reply.trim().to_string(),
                tool_calls: Vec::new(),
            });
        }
        calls.push(call_from_object(
            value,
            calls.len(),
            &["parameters", "arguments"],
        )?);
        rest = rest[used..].trim_start();
        match rest.strip_prefix(';') {
            Some(r) if r.trim_start().starts_with('{') => rest = r.trim_start(),
            _ => break,
        }
    }
    Ok(ParsedReply {
        content: rest.trim().to_string(),
        tool_calls: calls,
    })
}

fn parse_gpt_oss(reply: &str) -> Result<ParsedReply> {
    let mut calls = Vec::new();
    let mut rest = reply;
    while let Some(at) = rest.find(HARMONY_TO) {
        let after = &rest[at + HARMONY_TO.len()..];
        let name_len = after
            .find(|c: char| c.is_whitespace() || c == '<')
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let Some(msg) = after.find(HARMONY_MESSAGE) else {
            return Err(Error::ToolCall(format!(
                "call {}: `{HARMONY_TO}{name}` is not followed by {HARMONY_MESSAGE}",
                calls.len()
            )));
        };
        let body = &after[msg + HARMONY_MESSAGE.len()..];
        let mut stream = serde_json::Deserializer::from_str(body).into_iter::<Value>();
        let args = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(json_error(calls.len(), body, &e)),
            None => return Err(json_error_eof(calls.len(), body)),
        };
        let mut obj = Map::new();
        obj.insert("name".into(), Value::String(name.to_string()));
        obj.insert("arguments".into(), args);
        calls.push(call_from_object(
            Value::Object(obj),
            calls.len(),
            &["arguments"],
        )?);
        let tail = &body[stream.byte_offset()..];
        rest = tail.strip_prefix(HARMONY_CALL).unwrap_or(tail);
    }
    // The answer is what the `final` channel says; analysis and calls are not content.
    let mut text = Vec::new();
    let mut rest = reply;
    let open = "<|channel|>final<|message|>";
    while let Some(at) = rest.find(open) {
        let body = &rest[at + open.len()..];
        let end = ["<|end|>", "<|return|>", "<|start|>"]
            .iter()
            .filter_map(|m| body.find(m))
            .min()
            .unwrap_or(body.len());
        text.push(&body[..end]);
        rest = &body[end..];
    }
    Ok(ParsedReply {
        content: join_text(&text),
        tool_calls: calls,
    })
}

/// Non-empty trimmed pieces, one per line.
fn join_text(pieces: &[&str]) -> String {
    pieces
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first characters of `s`, for error messages.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

fn parse_json(body: &str, index: usize) -> Result<Value> {
    if body.is_empty() {
        return Err(json_error_eof(index, body));
    }
    serde_json::from_str(body).map_err(|e| json_error(index, body, &e))
}

fn json_error(index: usize, body: &str, e: &serde_json::Error) -> Error {
    Error::ToolCall(format!(
        "call {index}: invalid JSON ({e}) in `{}`",
        snippet(body)
    ))
}

fn json_error_eof(index: usize, body: &str) -> Error {
    Error::ToolCall(format!(
        "call {index}: expected a JSON object, found `{}`",
        snippet(body)
    ))
}

/// A call from its JSON object: `name`, and the arguments under the first of `arg_keys`.
fn call_from_object(value: Value, index: usize, arg_keys: &[&str]) -> Result<ToolCall> {
    let Value::Object(mut obj) = value else {
        return Err(Error::ToolCall(format!(
            "call {index}: expected a JSON object, found `{}`",
            snippet(&value.to_string())
        )));
    };
    let name = match obj.remove("name") {
        Some(Value::String(n)) if !n.is_empty() => n,
        _ => {
            return Err(Error::ToolCall(format!(
                "call {index}: no \"name\" string in `{}`",
                snippet(&Value::Object(obj).to_string())
            )));
        }
    };
    let args = arg_keys
        .iter()
        .find_map(|k| obj.remove(*k))
        .unwrap_or(Value::Null);
    let arguments = match args {
        Value::Null => Value::Object(Map::new()),
        Value::Object(o) => Value::Object(o),
        // Some models write the arguments as a string of JSON.
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(o)) => Value::Object(o),
            _ => {
                return Err(Error::ToolCall(format!(
                    "call {index} ({name}): arguments are a string that is not a JSON object: `{}`",
                    snippet(&s)
                )));
            }
        },
        other => {
            return Err(Error::ToolCall(format!(
                "call {index} ({name}): arguments must be a JSON object, found `{}`",
                snippet(&other.to_string())
            )));
        }
    };
    Ok(ToolCall {
        id: Some(format!("call_{index}")),
        name,
        arguments,
    })
}

/// A grammar that accepts exactly the valid calls of some tools, and what triggers it.
///
/// Use it whole ([`constrain`](Self::constrain) with `lazy = false`) to force a call, or lazily
/// to let the model write text until it opens a call: the trigger patterns are searched in the
/// generated text, and from the start of the match on (the first non-empty capture group if
/// the pattern has one, else the whole match) the grammar must be followed; a trigger token
/// starts it at that token. A lazy grammar sees every token the chain accepts, so do not
/// [`accept`](crate::SamplerChain::accept) prompt tokens into such a chain: a marker in the
/// prompt would trigger it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolGrammar {
    /// The GBNF text.
    pub gbnf: String,
    /// The rule generation must match.
    pub root: String,
    /// Regular expressions (ECMAScript) that start the grammar when the output matches.
    pub trigger_patterns: Vec<String>,
    /// Tokens that start the grammar: the format's opening marker when the vocabulary has
    /// it as one token.
    pub trigger_tokens: Vec<Token>,
}

impl ToolGrammar {
    /// Adds this grammar to a sampler chain: lazily (free text until a trigger) or not
    /// (the output must be calls from the first token).
    ///
    /// ```no_run
    /// use llamacpp::chat::{tool_call_grammar, Tool, ToolCallFormat};
    /// use llamacpp::SamplerChain;
    /// # fn demo(model: &llamacpp::Model) -> llamacpp::Result<()> {
    /// let tools = [Tool::new("get_weather", "Weather in a city", serde_json::json!({
    ///     "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))];
    /// let g = tool_call_grammar(ToolCallFormat::Hermes, &tools, model.vocab())?;
    /// let chain = g.constrain(SamplerChain::builder(model.vocab()), true).dist(7).build()?;
    /// # let _ = chain; Ok(()) }
    /// ```
    pub fn constrain<'v>(&self, builder: SamplerBuilder<'v>, lazy: bool) -> SamplerBuilder<'v> {
        if lazy {
            let patterns: Vec<&str> = self.trigger_patterns.iter().map(String::as_str).collect();
            builder.grammar_lazy(&self.gbnf, &self.root, &patterns, &self.trigger_tokens)
        } else {
            builder.grammar(&self.gbnf, &self.root)
        }
    }
}

/// Options of [`tool_call_grammar_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ToolGrammarOptions {
    /// Accept several calls in one reply (Hermes: blocks separated by a newline; Llama 3:
    /// objects separated by `; `). Off by default: one call, then the end of generation.
    pub parallel: bool,
}

impl ToolGrammarOptions {
    /// Sets [`parallel`](Self::parallel).
    pub fn parallel(mut self, on: bool) -> Self {
        self.parallel = on;
        self
    }
}

/// A grammar accepting one call, in `format`, of one of `tools`: the name is one of theirs
/// and the arguments match that tool's parameter schema (converted with
/// [`json_schema_to_grammar`], so its limits apply). See [`ToolGrammar`] for lazy use.
///
/// No tools, two tools with one name, or a schema the converter rejects are errors.
///
/// ```no_run
/// # fn demo(model: &llamacpp::Model) -> llamacpp::Result<()> {
/// use llamacpp::chat::{tool_call_grammar, Tool, ToolCallFormat};
/// let tools = [Tool::new("add", "Adds", serde_json::json!({"type": "object",
///     "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}))];
/// let g = tool_call_grammar(ToolCallFormat::Hermes, &tools, model.vocab())?;
/// assert_eq!(g.trigger_patterns, ["<tool_call>"]);
/// # Ok(()) }
/// ```
pub fn tool_call_grammar(
    format: ToolCallFormat,
    tools: &[Tool],
    vocab: Vocab<'_>,
) -> Result<ToolGrammar> {
    tool_call_grammar_with(format, tools, vocab, ToolGrammarOptions::default())
}

/// [`tool_call_grammar`] with options (parallel calls).
pub fn tool_call_grammar_with(
    format: ToolCallFormat,
    tools: &[Tool],
    vocab: Vocab<'_>,
    options: ToolGrammarOptions,
) -> Result<ToolGrammar> {
    if tools.is_empty() {
        return Err(Error::ToolCall(
            "a tool grammar needs at least one tool".into(),
        ));
    }
    for (i, t) in tools.iter().enumerate() {
        if t.name.is_empty() {
            return Err(Error::ToolCall(format!("tool {i} has an empty name")));
        }
        if tools[..i].iter().any(|u| u.name == t.name) {
            return Err(Error::ToolCall(format!("two tools are named `{}`", t.name)));
        }
    }
    // Each tool's argument grammar on its own, its rules renamed `t<i>-...` so that they
    // cannot clash with each other's or with the rules written here (none start that way).
    let mut gbnf = String::new();
    for (i, tool) in tools.iter().enumerate() {
        let schema = match &tool.parameters {
            Value::Null => r#"{"type": "object"}"#.to_string(),
            p => p.to_string(),
        };
        let g = json_schema_to_grammar(&schema)
            .map_err(|e| Error::ToolCall(format!("tool `{}`: {e}", tool.name)))?;
        gbnf.push_str(&prefix_rules(&g, &format!("t{i}-")));
        gbnf.push('\n');
    }
    let alts = |f: &dyn Fn(usize) -> String| -> String {
        (0..tools.len()).map(f).collect::<Vec<_>>().join(" | ")
    };
    // A JSON call object: name first (as chat templates write it), then the arguments.
    let call_object = |args_key: &str| {
        let body = alts(&|i| {
            let name = Value::String(tools[i].name.clone()).to_string();
            format!(
                "{} sp \",\" sp {} sp \":\" sp t{i}-root",
                gbnf_literal(&name),
                gbnf_literal(&format!("\"{args_key}\""))
            )
        });
        format!("\"{{\" sp \"\\\"name\\\"\" sp \":\" sp ( {body} ) sp \"}}\"")
    };
    let (rules, patterns) = match format {
        ToolCallFormat::Hermes => {
            let more = if options.parallel {
                " ( \"\\n\" tool-call )*"
            } else {
                ""
            };
            (
                format!(
                    "root ::= tool-call{more}\n\
                     tool-call ::= {} call-json \"\\n\"? {}\n\
                     call-json ::= {}\n",
                    gbnf_literal(&format!("{HERMES_OPEN}\n")),
                    gbnf_literal(HERMES_CLOSE),
                    call_object("arguments")
                ),
                vec![HERMES_OPEN.to_string()],
            )
        }
        ToolCallFormat::Llama3Json => {
            let more = if options.parallel {
                " ( sp \";\" sp call-json )*"
            } else {
                ""
            };
            (
                format!(
                    "root ::= ( {} sp )? call-json{more}\n\
                     call-json ::= {}\n",
                    gbnf_literal(PYTHON_TAG),
                    call_object("parameters")
                ),
                // From the first `{` or tag at the very start of the reply (after blanks).
                vec![r"^\s*(\{|<\|python_tag\|>)".to_string()],
            )
        }
        ToolCallFormat::GptOss => {
            // The recipient after the channel, or in the header before it.
            let in_channel = alts(&|i| {
                format!(
                    "{} ( \" <|constrain|>json\" | \" json\" )? \"<|message|>\" t{i}-root",
                    gbnf_literal(&tools[i].name)
                )
            });
            let in_header = alts(&|i| {
                format!(
                    "{} \"<|channel|>commentary\" ( \" <|constrain|>json\" | \" json\" )? \"<|message|>\" t{i}-root",
                    gbnf_literal(&tools[i].name)
                )
            });
            let more = if options.parallel {
                " ( \"<|call|>\" \"<|start|>assistant\" tool-call )*"
            } else {
                ""
            };
            (
                format!(
                    "root ::= tool-call{more}\n\
                     tool-call ::= \"<|channel|>commentary to=functions.\" ( {in_channel} ) | \" to=functions.\" ( {in_header} )\n"
                ),
                vec![r"(?:<\|channel\|>commentary)? to=functions\.".to_string()],
            )
        }
    };
    gbnf.push_str(&rules);
    gbnf.push_str("sp ::= \" \"?\n");
    let trigger_tokens = match format.marker() {
        Some(marker) => {
            let toks = vocab.tokenize(marker, false, true)?;
            if toks.len() == 1 { toks } else { Vec::new() }
        }
        None => Vec::new(),
    };
    Ok(ToolGrammar {
        gbnf,
        root: "root".into(),
        trigger_patterns: patterns,
        trigger_tokens,
    })
}

/// `s` as a GBNF string literal.
fn gbnf_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `gbnf` with every rule name (definitions and references) prefixed by `prefix`.
///
/// Names are the runs of word characters outside string literals, character classes,
/// repetition braces and comments; everything else is copied as is.
fn prefix_rules(gbnf: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(gbnf.len() * 2);
    let mut chars = gbnf.chars().peekable();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == close {
                        break;
                    }
                }
            }
            '{' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '}' {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if is_word(c) => {
                out.push_str(prefix);
                out.push(c);
                while let Some(&d) = chars.peek() {
                    if !is_word(d) {
                        break;
                    }
                    out.push(d);
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_names_not_literals_classes_or_counts() {
        let g = "root ::= \"a b\" x-y [a-z\\]] char{0,15} # note\nx-y ::= \"\\\"q\" root\n";
        assert_eq!(
            prefix_rules(g, "t0-"),
            "t0-root ::= \"a b\" t0-x-y [a-z\\]] t0-char{0,15} # note\nt0-x-y ::= \"\\\"q\" t0-root\n"
        );
    }

    #[test]
    fn literals_escape_quotes_backslashes_and_controls() {
        assert_eq!(gbnf_literal("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
    }
}
