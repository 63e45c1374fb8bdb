//! Tokenizer access: [`Vocab`], checked [`Token`]s and a streaming UTF-8 decoder.

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::raw::vocab::RawVocab;

/// A token id that was checked against a vocabulary (or produced by one).
///
/// Contexts check ids against their own model again before decoding, so a
/// token from another model's vocabulary cannot reach C unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// transparent: a `&[Token]` is handed to C as a `llama_token` array without copying
#[repr(transparent)]
pub struct Token(i32);

impl Token {
    /// The raw id.
    pub fn id(self) -> i32 {
        self.0
    }

    /// An id llama.cpp put in a candidate list (always one of the vocabulary's).
    pub(crate) fn from_candidate(id: i32) -> Token {
        Token(id)
    }

    #[cfg(test)]
    pub(crate) fn from_trusted(id: i32) -> Token {
        Token(id)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Texts whose longest possible pre-tokenizer match ([`regex_reach`]) is longer than this
/// (in bytes) are tokenized on a helper thread sized to it, for vocabularies whose
/// pre-tokenizer splits text with regexes (BPE, WordPiece).
const DEEP_STACK_FROM: usize = 512;

/// That thread's stack per byte of reach. For most BPE pre-tokenizers (deepseek, falcon,
/// bloom, gpt-4o, tekken, ...) llama.cpp falls back to `std::regex`, whose matcher recurses
/// once per character of a match: about 300 bytes each in a release build, over 1 KiB with
/// AddressSanitizer. One run of 8000 letters overflowed a 2 MiB thread's stack. (Address
/// space only: pages a short match never touches are never committed.)
const STACK_PER_BYTE: usize = 4096;

/// An upper bound on the length of one pre-tokenizer regex match in `text`. None of the
/// pinned tree's pre-tokenizer patterns matches a newline followed by a character that is
/// not whitespace, except as a single leading `\s?`: so a match lies within one of the
/// pieces the text splits into after each such newline, plus one byte. Only a printable
/// ASCII character after the newline splits: any other byte may begin whitespace (a
/// vertical tab, U+3000), which only makes the bound larger.
fn regex_reach(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut longest, mut start) = (0, 0);
    for i in 1..b.len() {
        if b[i - 1] == b'\n' && b[i].is_ascii_graphic() {
            longest = longest.max(i - start);
            start = i;
        }
    }
    longest.max(b.len() - start) + 1
}

/// A model's vocabulary, borrowed from the [`Model`](crate::Model).
#[derive(Clone, Copy)]
pub struct Vocab<'m> {
    raw: RawVocab<'m>,
}

impl std::fmt::Debug for Vocab<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocab")
            .field("n_tokens", &self.n_tokens())
            .finish()
    }
}

impl<'m> Vocab<'m> {
    pub(crate) fn new(raw: RawVocab<'m>) -> Self {
        Self { raw }
    }

    pub(crate) fn as_ptr(&self) -> *const sys::llama_vocab {
        self.raw.as_ptr()
    }

    /// The raw vocabulary handle.
    pub(crate) fn raw(&self) -> RawVocab<'m> {
        self.raw
    }

    /// Number of tokens.
    pub fn n_tokens(&self) -> i32 {
        self.raw.n_tokens()
    }

    /// Checks an id against this vocabulary.
    pub fn token(&self, id: i32) -> Result<Token> {
        let n_vocab = self.n_tokens();
        if (0..n_vocab).contains(&id) {
            Ok(Token(id))
        } else {
            Err(Error::InvalidToken { id, n_vocab })
        }
    }

    /// Re-checks a token (it may come from another model's vocabulary).
    pub(crate) fn check(&self, t: Token) -> Result<i32> {
        self.token(t.0).map(Token::id)
    }

    fn special(&self, id: i32) -> Option<Token> {
        self.token(id).ok()
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<Token> {
        self.special(self.raw.bos())
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<Token> {
        self.special(self.raw.eos())
    }

    /// End-of-turn token.
    pub fn eot(&self) -> Option<Token> {
        self.special(self.raw.eot())
    }

    /// Newline token.
    pub fn nl(&self) -> Option<Token> {
        self.special(self.raw.nl())
    }

    /// Padding token.
    pub fn pad(&self) -> Option<Token> {
        self.special(self.raw.pad())
    }

    /// Fill-in-the-middle tokens: (prefix, suffix, middle).
    pub fn fim(&self) -> (Option<Token>, Option<Token>, Option<Token>) {
        let (pre, suf, mid) = self.raw.fim();
        (self.special(pre), self.special(suf), self.special(mid))
    }

    /// Whether tokenizing with `add_special` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.raw.adds_bos()
    }

    /// Whether `t` ends generation (EOS, EOT, ...).
    pub fn is_eog(&self, t: Token) -> bool {
        self.check(t).is_ok_and(|id| self.raw.is_eog(id))
    }

    /// Whether the model has a tokenizer. A model without one (`tokenizer.ggml.model` =
    /// `no_vocab`, as benchmark models are written) has only token ids: no texts, attributes
    /// or types, which llama.cpp asserts on (so [`text`](Self::text) and [`attr`](Self::attr)
    /// return [`Error::NoVocabulary`] there, and [`is_control`](Self::is_control) is false).
    pub fn has_tokenizer(&self) -> bool {
        self.raw.vocab_type() != sys::LLAMA_VOCAB_TYPE_NONE
    }

    /// A token id checked against the vocabulary, which must have a tokenizer.
    fn check_with_data(&self, t: Token) -> Result<i32> {
        if !self.has_tokenizer() {
            return Err(Error::NoVocabulary);
        }
        self.check(t)
    }

    /// Whether `t` is a control token.
    pub fn is_control(&self, t: Token) -> bool {
        self.check_with_data(t)
            .is_ok_and(|id| self.raw.is_control(id).unwrap_or(false))
    }

    /// Whether `t` is a user-defined token: one llama.cpp's tokenizer matches in any text,
    /// even without special-token parsing (Qwen's `<think>`; gpt-oss's `<|start|>`,
    /// `<|message|>`, ... are forced to this kind). False without a tokenizer.
    // The C enum is unsigned here but signed where bindgen sees an MSVC target.
    #[allow(clippy::unnecessary_cast)]
    pub fn is_user_defined(&self, t: Token) -> bool {
        self.attr(t)
            .is_ok_and(|a| a & sys::LLAMA_TOKEN_ATTR_USER_DEFINED as u32 != 0)
    }

    /// The token's attribute bits (`LLAMA_TOKEN_ATTR_*`).
    // The C enum is unsigned here but signed where bindgen sees an MSVC target.
    #[allow(clippy::unnecessary_cast)]
    pub fn attr(&self, t: Token) -> Result<u32> {
        let id = self.check_with_data(t)?;
        // `check_with_data` made the same checks as the raw call.
        Ok(self.raw.attr(id).ok_or(Error::NoVocabulary)? as u32)
    }

    /// The token's text as stored in the vocabulary.
    pub fn text(&self, t: Token) -> Result<String> {
        let id = self.check_with_data(t)?;
        // `check_with_data` made the same checks as the raw call.
        self.raw.text(id).ok_or(Error::NoVocabulary)
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS as the model wants;
    /// `parse_special` turns control-token text (`<|im_end|>`) into those tokens.
    ///
    /// [`Error::NoVocabulary`] without a tokenizer; [`Error::Cpp`] when llama.cpp's
    /// tokenizer throws (a malformed vocabulary in the model file).
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        i32::try_from(text.len()).map_err(|_| Error::OutOfRange {
            what: "text length",
            value: text.len() as i64,
            expected: "< 2^31 bytes".into(),
        })?;
        if !self.has_tokenizer() {
            // llama.cpp asserts (aborts) on a vocabulary without a tokenizer.
            return Err(Error::NoVocabulary);
        }
        let regex_split = matches!(
            self.raw.vocab_type(),
            sys::LLAMA_VOCAB_TYPE_BPE | sys::LLAMA_VOCAB_TYPE_WPM
        );
        let reach = if regex_split { regex_reach(text) } else { 0 };
        if reach <= DEEP_STACK_FROM {
            return self.tokenize_here(text, add_special, parse_special);
        }
        let stack = (1usize << 20).saturating_add(reach.saturating_mul(STACK_PER_BYTE));
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("llamacpp-tokenize".into())
                .stack_size(stack)
                .spawn_scoped(s, || self.tokenize_here(text, add_special, parse_special))
                .map_err(|e| {
                    Error::Unsupported(format!(
                        "a line of {reach} bytes needs a thread with a {stack}-byte stack \
                         (llama.cpp's pre-tokenizer regex recurses per character), which could \
                         not start ({e}): tokenize the text in parts"
                    ))
                })?;
            worker
                .join()
                .unwrap_or_else(|_| Err(Error::Unsupported("the tokenizer thread panicked".into())))
        })
    }

    /// [`Vocab::tokenize`] on the calling thread.
    fn tokenize_here(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        // `tokenize` checked the tokenizer and the length; the raw call checks again.
        let mut out: Vec<i32> = vec![0; text.len() + 2];
        for _ in 0..2 {
            let n = self
                .raw
                .tokenize(text, &mut out, add_special, parse_special)
                .ok_or(Error::NoVocabulary)?
                .map_err(|message| cpp("llama_tokenize", message))?;
            if n == i32::MIN {
                return Err(Error::OutOfRange {
                    what: "token count",
                    value: i64::MIN,
                    expected: "< 2^31".into(),
                });
            }
            if n >= 0 {
                out.truncate(n as usize);
                return Ok(out.into_iter().map(Token).collect());
            }
            out.resize(n.unsigned_abs() as usize, 0);
        }
        Err(Error::OutOfRange {
            what: "token count",
            value: out.len() as i64,
            expected: "stable across two calls".into(),
        })
    }

    /// The bytes of one token (may be part of a multi-byte character).
    ///
    /// [`Error::NoVocabulary`] without a tokenizer (llama.cpp would abort).
    pub fn piece_bytes(&self, t: Token, special: bool) -> Result<Vec<u8>> {
        let id = self.check_with_data(t)?;
        let mut buf = vec![0u8; 32];
        loop {
            // `check_with_data` made the same checks as the raw call; the shim catches
            // exceptions (none expected once the id is checked).
            let n = self
                .raw
                .token_to_piece(id, &mut buf, special)
                .ok_or(Error::NoVocabulary)?
                .map_err(|message| cpp("llama_token_to_piece", message))?;
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
    }

    /// One token as text (invalid UTF-8 replaced; use [`Utf8Decoder`] for streams).
    pub fn piece(&self, t: Token, special: bool) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.piece_bytes(t, special)?).into_owned())
    }

    /// Turns tokens back into text.
    pub fn detokenize(
        &self,
        tokens: &[Token],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<String> {
        let ids = tokens
            .iter()
            .map(|&t| self.check(t))
            .collect::<Result<Vec<i32>>>()?;
        let too_many = || Error::OutOfRange {
            what: "token count",
            value: ids.len() as i64,
            expected: "< 2^31".into(),
        };
        i32::try_from(ids.len()).map_err(|_| too_many())?;
        let mut buf = vec![0u8; ids.len() * 4 + 16];
        loop {
            // The ids are in range, so the shim is expected to catch nothing.
            let n = self
                .raw
                .detokenize(&ids, &mut buf, remove_special, unparse_special)
                .ok_or_else(too_many)?
                .map_err(|message| cpp("llama_detokenize", message))?;
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
    }
}

/// The error for a shim call into `what` that threw with `message`.
fn cpp(what: &'static str, message: String) -> Error {
    Error::Cpp { what, message }
}

/// Joins token pieces into text without splitting multi-byte characters:
/// bytes of an incomplete character wait for the next piece.
///
/// ```
/// let mut d = llamacpp::Utf8Decoder::default();
/// assert_eq!(d.push(&[0xE2, 0x82]), "");
/// assert_eq!(d.push(&[0xAC, b'!']), "€!");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Adds bytes; returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..good]));
                    match e.error_len() {
                        // Incomplete character at the end: keep it for later.
                        None => {
                            self.pending.drain(..good);
                            return out;
                        }
                        // Invalid bytes: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
    }

    /// Returns whatever is left (invalid bytes replaced).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_split_and_invalid_bytes() {
        let mut d = Utf8Decoder::default();
        let text = "añ€😀";
        let mut out = String::new();
        for b in text.as_bytes() {
            out.push_str(&d.push(std::slice::from_ref(b)));
        }
        assert_eq!(out, text);
        assert_eq!(d.push(&[0xFF, b'a']), "\u{FFFD}a");
        assert_eq!(d.push(&[0xF0, 0x9F]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }
}

#[cfg(test)]
mod reach_tests {
    use super::regex_reach;

    #[test]
    fn reach_is_the_longest_piece_between_newlines_before_text() {
        assert_eq!(regex_reach(""), 1);
        assert_eq!(regex_reach("abc"), 4);
        // Split after "\n" when text follows; "\n\n" and "\n " keep whitespace together.
        assert_eq!(regex_reach("ab\ncdef"), 5);
        assert_eq!(regex_reach("ab\n\n\ncd"), 6);
        assert_eq!(regex_reach("ab\n  cd"), 8);
        assert_eq!(regex_reach(&"x".repeat(10_000)), 10_001);
        assert_eq!(regex_reach(&"line of text\n".repeat(1000)), 14);
        // A newline before a non-ASCII or control character does not split (it may be
        // whitespace).
        assert_eq!(regex_reach("ab\n\u{3000}cd"), 9);
        assert_eq!(regex_reach("ab\n\x0bcd"), 7);
    }
}
