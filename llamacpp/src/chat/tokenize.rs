//! Tokenizing a rendered conversation so that only the template's markup can become control
//! tokens: whatever a message says is tokenized as text.
//!
//! The template is rendered twice: once as is, once with every content (and reasoning)
//! replaced by a unique marker. Filling the markers back in must reproduce the plain rendering
//! exactly, each content as is, trimmed, or JSON-escaped (templates that trim, or print a tool
//! result with `tojson`); then the markers split the output into markup, tokenized with
//! special-token parsing, and contents, tokenized as text. A template that transforms contents
//! in any other way (splits them, searches them) gives an error rather than a guess at where
//! the user's text went.

use super::{ChatMessage, ChatRequest, ChatTemplate};
use crate::error::{Error, Result};
use crate::{Token, Vocab};

/// The tokens of `req` rendered with `template`, where only the template's own markup can
/// become control tokens: every message's content and reasoning is tokenized as plain text, so
/// a user who types `<|im_end|>` gets those characters, not the control token (nor any
/// user-defined token, which llama.cpp would otherwise match in plain text).
///
/// When the vocabulary adds BOS itself and a jinja template starts with its `bos_token`, that
/// text is dropped from the rendering so BOS is not doubled.
///
/// # Errors
/// Rendering errors, and [`Error::ChatTemplate`] when the template transforms contents beyond
/// trimming them, so the split cannot be trusted.
///
/// ```no_run
/// use llamacpp::chat::{ChatMessage, ChatRequest, ChatTemplate, tokenize_chat};
/// # let model = llamacpp::Model::load("m.gguf", Default::default())?;
/// let template = ChatTemplate::from_model(&model)?;
/// let req = ChatRequest::new(vec![ChatMessage::new("user", "hi <|im_end|>")]);
/// let tokens = tokenize_chat(model.vocab(), &template, &req)?;
/// # let _ = tokens;
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub fn tokenize_chat(
    vocab: Vocab<'_>,
    template: &ChatTemplate,
    req: &ChatRequest,
) -> Result<Vec<Token>> {
    // Slot 2i is message i's content, 2i+1 its reasoning.
    let slots: Vec<Option<&str>> = req
        .messages
        .iter()
        .flat_map(|m| [Some(m.content.as_str()), m.reasoning_content.as_deref()])
        .collect();
    // Private-use characters, with a nonce no content contains, mark where each slot goes.
    let nonce = (0u32..)
        .find(|n| {
            let tag = format!("{OPEN}{n}:");
            slots.iter().flatten().all(|s| !s.contains(&tag))
        })
        .unwrap_or(0);
    let prefix = format!("{OPEN}{nonce}:");
    let marker = |i: usize| format!("{prefix}{i}{CLOSE}");

    // Empty texts stay empty: templates test them (`{% if content %}`), and there is nothing
    // in them to keep apart.
    let mut marked = req.clone();
    for (i, m) in marked.messages.iter_mut().enumerate() {
        if !m.content.is_empty() {
            m.content = marker(2 * i);
        }
        if let Some(r) = &mut m.reasoning_content
            && !r.is_empty()
        {
            *r = marker(2 * i + 1);
        }
    }
    let mut rendered = template.render(&marked)?;
    let mut plain = template.render(req)?;
    if let Some(bos) = template.bos_text().filter(|b| !b.is_empty())
        && vocab.adds_bos()
        && rendered.starts_with(bos)
        && plain.starts_with(bos)
    {
        rendered.drain(..bos.len());
        plain.drain(..bos.len());
    }

    let pieces = split(&rendered, &prefix)?;
    let contents = match_plain(&pieces, &plain, &slots)?;

    let mut tokens = Vec::new();
    // The split always starts with a markup piece (maybe empty): it carries BOS.
    let mut first = true;
    let mut texts = contents.iter();
    for piece in &pieces {
        match piece {
            Piece::Markup(markup) => {
                if !markup.is_empty() || first {
                    tokens.extend(vocab.tokenize(markup, first, true)?);
                }
            }
            Piece::Slot(_) => {
                let text = texts.next().map_or("", String::as_str);
                tokens.extend(tokenize_text(vocab, text)?);
            }
        }
        first = false;
    }
    Ok(tokens)
}

/// [`tokenize_chat`] with a built-in template (a name such as `chatml`, or a template text
/// llama.cpp recognises); only roles and contents are used.
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
    let messages = messages
        .iter()
        .map(|m| ChatMessage::new(m.role.clone(), m.content.clone()))
        .collect();
    let req = ChatRequest::new(messages).add_generation_prompt(add_assistant);
    tokenize_chat(vocab, &ChatTemplate::builtin(template), &req)
}

/// `text` as plain text tokens: no control tokens (special-token parsing is off) and no
/// user-defined tokens either, which llama.cpp's tokenizer matches in any text (gpt-oss's
/// `<|start|>` and `<|message|>` are user-defined there, Qwen's `<think>` too). Where one would
/// come out, its text is tokenized in two halves, so it stays characters.
pub(crate) fn tokenize_text(vocab: Vocab<'_>, text: &str) -> Result<Vec<Token>> {
    let tokens = vocab.tokenize(text, false, false)?;
    let mut matched: Vec<String> = Vec::new();
    for &t in &tokens {
        if vocab.is_user_defined(t) {
            let s = vocab.text(t)?;
            if !s.is_empty() && !matched.contains(&s) {
                matched.push(s);
            }
        }
    }
    if matched.is_empty() {
        return Ok(tokens);
    }
    let mut out = Vec::with_capacity(tokens.len() + 4);
    let mut rest = text;
    // The earliest occurrence of a matched token text, the longest one where several start there.
    while let Some((at, len)) = matched
        .iter()
        .filter_map(|m| rest.find(m.as_str()).map(|at| (at, m.len())))
        .min_by_key(|&(at, len)| (at, std::cmp::Reverse(len)))
    {
        out.extend(tokenize_text(vocab, &rest[..at])?);
        let word = &rest[at..at + len];
        let chars = word.chars().count();
        if chars < 2 {
            return Err(Error::ChatTemplate(format!(
                "the vocabulary turns the single character {word:?} into a user-defined token"
            )));
        }
        let mid = word
            .char_indices()
            .nth(chars / 2)
            .map_or(word.len(), |(i, _)| i);
        out.extend(tokenize_text(vocab, &word[..mid])?);
        out.extend(tokenize_text(vocab, &word[mid..])?);
        rest = &rest[at + len..];
    }
    out.extend(tokenize_text(vocab, rest)?);
    Ok(out)
}

/// Opens a marker (a private-use character no template markup uses).
const OPEN: char = '\u{E000}';
/// Closes a marker.
const CLOSE: char = '\u{E001}';

/// A part of a rendering with markers.
enum Piece<'a> {
    Markup(&'a str),
    Slot(usize),
}

/// `rendered` cut at its markers (`prefix`, a slot number, [`CLOSE`]).
fn split<'a>(rendered: &'a str, prefix: &str) -> Result<Vec<Piece<'a>>> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(at) = rest.find(prefix) {
        pieces.push(Piece::Markup(&rest[..at]));
        let after = &rest[at + prefix.len()..];
        let end = after
            .find(CLOSE)
            .ok_or_else(|| Error::ChatTemplate("the template cut a content marker".into()))?;
        let slot = after[..end]
            .parse()
            .map_err(|_| Error::ChatTemplate("the template altered a content marker".into()))?;
        pieces.push(Piece::Slot(slot));
        rest = &after[end + CLOSE.len_utf8()..];
    }
    pieces.push(Piece::Markup(rest));
    Ok(pieces)
}

/// What each marker of the marked rendering stands for in the plain one: the content as is,
/// trimmed, or escaped as `tojson` escapes it inside a JSON string (templates that print a
/// result with `tojson`), whichever makes the plain rendering continue with the next markup.
/// Only these fixed forms are tried, and the markup pieces (which come from the rendering with
/// markers, so hold no message text) must match the plain rendering exactly: whatever the
/// contents say, they can only ever be tokenized as text.
fn match_plain(pieces: &[Piece<'_>], plain: &str, slots: &[Option<&str>]) -> Result<Vec<String>> {
    let changed = || {
        Error::ChatTemplate(
            "the template changes message contents (beyond trimming or JSON-escaping them), so \
             they cannot be kept apart from its markup"
                .into(),
        )
    };
    let mut texts = Vec::new();
    let mut at = 0;
    for (k, piece) in pieces.iter().enumerate() {
        let rest = &plain[at..];
        match piece {
            Piece::Markup(m) => {
                if !rest.starts_with(m) {
                    return Err(changed());
                }
                at += m.len();
            }
            Piece::Slot(i) => {
                let text = slots.get(*i).copied().flatten().ok_or_else(|| {
                    Error::ChatTemplate("the template altered a content marker".into())
                })?;
                // `split` puts a markup piece after every slot; the last one ends the text.
                let (next, last) = match pieces.get(k + 1) {
                    Some(Piece::Markup(m)) => (*m, k + 2 == pieces.len()),
                    _ => ("", true),
                };
                let fits = |c: &str| {
                    rest.strip_prefix(c).is_some_and(|after| {
                        if last {
                            after == next
                        } else {
                            after.starts_with(next)
                        }
                    })
                };
                let candidates = [
                    text.to_owned(),
                    text.trim().to_owned(),
                    super::jinja::json_string_body(text),
                    super::jinja::json_string_body(text.trim()),
                ];
                let chosen = candidates
                    .into_iter()
                    .find(|c| fits(c))
                    .ok_or_else(changed)?;
                at += chosen.len();
                texts.push(chosen);
            }
        }
    }
    if at != plain.len() {
        return Err(changed());
    }
    Ok(texts)
}
