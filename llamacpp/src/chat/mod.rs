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

use llamacpp_sys as sys;

use crate::boundary::ErrBuf;
use crate::error::{Error, Result, c_string};

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
    let raw: Vec<sys::llama_chat_message> = owned
        .iter()
        .map(|(r, c)| sys::llama_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect();
    let total: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    let mut buf = vec![0u8; total * 2 + 256];
    for _ in 0..2 {
        let cap = i32::try_from(buf.len())
            .map_err(|_| Error::ChatTemplate("conversation too long".into()))?;
        let (mut n, mut e) = (0, ErrBuf::new());
        // SAFETY: all strings NUL-terminated and alive; `buf` has `cap` bytes; the shim
        // catches exceptions (allocations sized by the conversation).
        let rc = unsafe {
            sys::llama_sys_chat_apply_template(
                tmpl.as_ptr(),
                raw.as_ptr(),
                raw.len(),
                add_assistant,
                buf.as_mut_ptr().cast(),
                cap,
                &mut n,
                e.ptr(),
                e.len(),
            )
        };
        if rc != 0 {
            return Err(Error::ChatTemplate(e.text()));
        }
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
    // SAFETY: with len 0 the function only returns the count.
    let n = unsafe { sys::llama_chat_builtin_templates(std::ptr::null_mut(), 0) }.max(0) as usize;
    let mut ptrs = vec![std::ptr::null(); n];
    // SAFETY: `ptrs` has room for `n` pointers to static strings.
    unsafe { sys::llama_chat_builtin_templates(ptrs.as_mut_ptr(), n) };
    // SAFETY: each pointer is a static NUL-terminated string.
    ptrs.into_iter()
        .map(|p| unsafe { crate::backend::cstr_lossy(p) })
        .collect()
}
