//! Chat: messages, templates (the model's own jinja template, or llama.cpp's built-in
//! heuristics), tool calls, and tokenizing a conversation so that only template markup can
//! become control tokens.

mod jinja;
mod message;
mod template;
mod tokenize;
mod tools;

pub use message::{ChatMessage, Tool, ToolCall};
pub use template::{ChatRequest, ChatTemplate};
pub use tokenize::{tokenize_chat, tokenize_conversation};
pub use tools::*;

use crate::error::{Error, Result, c_string};
use crate::raw::chat as raw;

/// Formats `messages` with `template` (a model's template text, or the name of
/// a built-in one such as `chatml`), adding the assistant prefix when `add_assistant`.
///
/// ```
/// use llamacpp::chat::{apply_template, ChatMessage};
/// let text = apply_template("chatml", &[ChatMessage::new("user", "hi")], true).unwrap();
/// assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
/// ```
pub fn apply_template(
    template: &str,
    messages: &[ChatMessage],
    add_assistant: bool,
) -> Result<String> {
    crate::backend::init();
    let tmpl = c_string(template)?;
    let owned: Vec<(std::ffi::CString, std::ffi::CString)> = messages
        .iter()
        .map(|m| Ok((c_string(&m.role)?, c_string(&m.content)?)))
        .collect::<Result<_>>()?;
    let total: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    let mut buf = vec![0u8; total * 2 + 256];
    for _ in 0..2 {
        i32::try_from(buf.len())
            .map_err(|_| Error::ChatTemplate("conversation too long".into()))?;
        let n = raw::apply_template(&tmpl, &owned, add_assistant, &mut buf)
            .map_err(Error::ChatTemplate)?;
        if n < 0 {
            return Err(Error::ChatTemplate(format!(
                "template not supported: {template:.60}"
            )));
        }
        let n = n as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return String::from_utf8(buf)
                .map_err(|_| Error::ChatTemplate("output is not UTF-8".into()));
        }
        buf.resize(n, 0);
    }
    Err(Error::ChatTemplate(
        "output size changed between calls".into(),
    ))
}

/// Names of the built-in templates.
pub fn builtin_templates() -> Vec<String> {
    raw::builtin_templates()
}
