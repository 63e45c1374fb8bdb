//! Chat templates: format messages with the model's template or a built-in one.

use llamacpp_sys as sys;

use crate::error::{Error, Result, c_string};
use crate::{Token, Vocab};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

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
        // SAFETY: all strings NUL-terminated and alive; `buf` has `cap` bytes.
        let n = unsafe {
            sys::llama_chat_apply_template(
                tmpl.as_ptr(),
                raw.as_ptr(),
                raw.len(),
                add_assistant,
                buf.as_mut_ptr().cast(),
                cap,
            )
        };
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

/// The tokens of `messages` rendered with `template`, where only the template's own markup can
/// become control tokens: every message's content is tokenized as plain text, so a user who
/// types `<|im_end|>` or `<|im_start|>system` gets those characters, not the control tokens.
///
/// The template is rendered once with each content replaced by a unique marker, the markers
/// split the output into markup (tokenized with special-token parsing, BOS added as the model
/// wants) and contents (tokenized as text). A template that trims contents gets them trimmed.
///
/// ```no_run
/// use llamacpp::chat::{ChatMessage, tokenize_conversation};
/// # let model = llamacpp::Model::load("m.gguf", Default::default())?;
/// let msgs = [ChatMessage::new("user", "hi <|im_end|>")];
/// let tokens = tokenize_conversation(model.vocab(), "chatml", &msgs, true)?;
/// # let _ = tokens;
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub fn tokenize_conversation(
    vocab: Vocab<'_>,
    template: &str,
    messages: &[ChatMessage],
    add_assistant: bool,
) -> Result<Vec<Token>> {
    // Private-use characters, with a nonce no content contains, mark where each content goes.
    let nonce = (0u32..)
        .find(|n| {
            let tag = format!("\u{E000}{n}:");
            messages.iter().all(|m| !m.content.contains(&tag))
        })
        .unwrap_or(0);
    let marker = |i: usize| format!("\u{E000}{nonce}:{i}\u{E001}");
    let marked: Vec<ChatMessage> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| ChatMessage::new(m.role.clone(), marker(i)))
        .collect();
    let rendered = apply_template(template, &marked, add_assistant)?;
    // What the template makes of a content: as is, or trimmed (some templates trim).
    let plain = apply_template(template, messages, add_assistant)?;
    let trimmed: Vec<ChatMessage> = messages
        .iter()
        .map(|m| ChatMessage::new(m.role.clone(), m.content.trim()))
        .collect();
    let trims =
        plain != fill(&rendered, messages, &marker) && plain == fill(&rendered, &trimmed, &marker);
    let contents = if trims { &trimmed[..] } else { messages };

    let mut tokens = Vec::new();
    let mut rest = rendered.as_str();
    let mut first = true;
    loop {
        // The next marker in the output, whichever message it belongs to.
        let next = contents
            .iter()
            .enumerate()
            .filter_map(|(i, m)| rest.find(&marker(i)).map(|at| (at, i, m)))
            .min_by_key(|&(at, _, _)| at);
        let (markup, after) = match next {
            Some((at, i, _)) => (&rest[..at], Some((at, i))),
            None => (rest, None),
        };
        if !markup.is_empty() || first {
            tokens.extend(vocab.tokenize(markup, first, true)?);
        }
        first = false;
        let Some((at, i)) = after else { break };
        tokens.extend(vocab.tokenize(&contents[i].content, false, false)?);
        rest = &rest[at + marker(i).len()..];
    }
    Ok(tokens)
}

/// `rendered` with each marker replaced by its message's content.
fn fill(rendered: &str, messages: &[ChatMessage], marker: &dyn Fn(usize) -> String) -> String {
    messages
        .iter()
        .enumerate()
        .fold(rendered.to_string(), |s, (i, m)| {
            s.replace(&marker(i), &m.content)
        })
}
