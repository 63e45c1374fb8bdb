//! A real byte-level BPE vocabulary (GPT-2 style, as Qwen and Llama 3 use).
//!
//! Layout, like a converted Qwen model: the 256 byte tokens (each byte mapped
//! to a printable character by the GPT-2 byte-to-unicode table), then one token
//! per merge, then control and user-defined tokens, then `[PADn]` tokens of
//! type UNUSED up to the requested size. The merges are learned at build time
//! from a small built-in text (`corpus.txt`) with the usual BPE procedure, so
//! llama.cpp tokenizes with real merges, and any UTF-8 text round-trips through
//! the byte tokens.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Result, SynthError};
use llamacpp_ggml::gguf::{MetaValue, Metadata};

/// Which vocabulary a model gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vocab {
    /// A trained byte-level BPE vocabulary padded to the preset's vocabulary size.
    Bpe,
    /// No tokenizer (`tokenizer.ggml.model = "no_vocab"`): llama.cpp creates
    /// `size` dummy tokens, which sets the output dimension. For benchmarks.
    None {
        /// Number of tokens (rows of `token_embd` and `output`).
        size: u32,
    },
}

/// End of text; also BOS and padding.
pub const ENDOFTEXT: &str = "<|endoftext|>";
/// ChatML turn start.
pub const IM_START: &str = "<|im_start|>";
/// ChatML turn end; EOS and EOT.
pub const IM_END: &str = "<|im_end|>";
/// User-defined tokens (always matched as one token, printed as text).
pub const USER_DEFINED: [&str; 2] = ["<think>", "</think>"];

/// The ChatML template stored in `tokenizer.chat_template`.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// llama.cpp's token types (`enum llama_token_type`).
mod token_type {
    pub const NORMAL: i32 = 1;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
}

const CORPUS: &str = include_str!("corpus.txt");
/// Merges learned at most (fewer if the corpus runs out of repeated pairs).
const MAX_MERGES: usize = 512;

/// A built BPE vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpeVocab {
    /// Token texts, by id.
    pub tokens: Vec<String>,
    /// Token types, by id (llama.cpp's `llama_token_type` values).
    pub token_types: Vec<i32>,
    /// Merges, as `"left right"`, highest priority first.
    pub merges: Vec<String>,
    /// Id of `<|endoftext|>`.
    pub endoftext: u32,
    /// Id of `<|im_start|>`.
    pub im_start: u32,
    /// Id of `<|im_end|>`.
    pub im_end: u32,
}

/// The GPT-2 byte-to-unicode table: printable Latin-1 bytes map to
/// themselves, the others to code points from U+0100 up, in byte order.
#[must_use]
pub fn byte_to_char() -> [char; 256] {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    for b in 0..256u32 {
        let cp = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = char::from_u32(cp).unwrap_or('?');
    }
    table
}

/// The byte tokens in vocabulary order: printable bytes first (as GPT-2 and
/// Qwen order them, so `!` is token 0), then the remapped ones.
fn byte_order() -> Vec<u8> {
    let table = byte_to_char();
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.sort_by_key(|&b| u32::from(table[b as usize]));
    bytes
}

/// Split text roughly like the Qwen2 pre-tokenizer: words with one optional
/// leading non-letter, single digits, punctuation runs with an optional
/// leading space, and whitespace runs (leaving a final space to the next word).
fn pretokenize(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let next_is_letter = chars.get(i + 1).is_some_and(|n| n.1.is_alphabetic());
        let mut j = i + 1;
        if c.is_alphabetic() || (!c.is_alphanumeric() && c != '\n' && c != '\r' && next_is_letter) {
            while j < chars.len() && chars[j].1.is_alphabetic() {
                j += 1;
            }
        } else if c.is_numeric() {
            // one digit at a time
        } else if c.is_whitespace() {
            while j < chars.len() && chars[j].1.is_whitespace() {
                j += 1;
            }
            if j < chars.len() && j - i > 1 && chars[j - 1].1 == ' ' {
                j -= 1;
            }
        } else {
            if c == ' ' {
                j += 1;
            }
            while j < chars.len() && !chars[j].1.is_alphanumeric() && !chars[j].1.is_whitespace() {
                j += 1;
            }
            while j < chars.len() && matches!(chars[j].1, '\n' | '\r') {
                j += 1;
            }
        }
        let j = j.min(chars.len()).max(i + 1);
        out.push(&text[chars[i].0..end_of(j)]);
        i = j;
    }
    out
}

/// Learn up to `max_merges` merges from `text`. Returns the merged token texts
/// and the merges, in order. Ties are broken by the pair's texts, so the result
/// is the same on every run.
fn learn_merges(text: &str, max_merges: usize) -> (Vec<String>, Vec<String>) {
    let table = byte_to_char();
    // symbol texts; ids 0..256 are the bytes (by byte value here, internally)
    let mut symbols: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    let mut words: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for w in pretokenize(text) {
        *words.entry(w.as_bytes().to_vec()).or_default() += 1;
    }
    let mut words: Vec<(Vec<u32>, u64)> = words
        .into_iter()
        .map(|(w, n)| (w.into_iter().map(u32::from).collect(), n))
        .collect();

    let mut by_text: HashMap<String, u32> = HashMap::new();
    let mut merged = Vec::new();
    let mut merges = Vec::new();
    while merged.len() < max_merges {
        let mut counts: HashMap<(u32, u32), u64> = HashMap::new();
        for (w, n) in &words {
            for p in w.windows(2) {
                *counts.entry((p[0], p[1])).or_default() += n;
            }
        }
        let best = counts.into_iter().filter(|&(_, n)| n >= 2).max_by(|a, b| {
            a.1.cmp(&b.1).then_with(|| {
                let ka = (&symbols[a.0.0 as usize], &symbols[a.0.1 as usize]);
                let kb = (&symbols[b.0.0 as usize], &symbols[b.0.1 as usize]);
                kb.cmp(&ka)
            })
        });
        let Some(((l, r), _)) = best else { break };
        let text = format!("{}{}", symbols[l as usize], symbols[r as usize]);
        merges.push(format!("{} {}", symbols[l as usize], symbols[r as usize]));
        // Two merge paths can spell the same text ("a"+"bc", "ab"+"c"): keep one token.
        let new_id = match by_text.get(&text) {
            Some(&id) => id,
            None => {
                let id = symbols.len() as u32;
                by_text.insert(text.clone(), id);
                merged.push(text.clone());
                symbols.push(text);
                id
            }
        };
        for (w, _) in &mut words {
            let mut out = Vec::with_capacity(w.len());
            let mut k = 0;
            while k < w.len() {
                if k + 1 < w.len() && w[k] == l && w[k + 1] == r {
                    out.push(new_id);
                    k += 2;
                } else {
                    out.push(w[k]);
                    k += 1;
                }
            }
            *w = out;
        }
    }
    (merged, merges)
}

impl BpeVocab {
    /// Tokens that are not merges or padding: the control and user-defined ones.
    const N_SPECIAL: usize = 3 + USER_DEFINED.len();

    /// The smallest vocabulary size accepted: bytes plus special tokens.
    pub const MIN_SIZE: u32 = 256 + Self::N_SPECIAL as u32;

    /// Build a vocabulary of exactly `size` tokens.
    ///
    /// # Errors
    /// [`SynthError::InvalidOptions`] if `size` is below [`Self::MIN_SIZE`].
    pub fn build(size: u32) -> Result<Self> {
        Self::build_with_controls(size, &[])
    }

    /// Build a vocabulary of exactly `size` tokens with `extra` control tokens after the
    /// ChatML ones (a chat template's own markup, such as Llama 3's `<|eot_id|>`), so that
    /// the template's markup tokenizes to control tokens. With no extras this is [`Self::build`].
    ///
    /// # Errors
    /// [`SynthError::InvalidOptions`] if `size` has no room for the bytes, the special tokens
    /// and the extras, or an extra is empty, repeated, or spells an existing token.
    pub fn build_with_controls(size: u32, extra: &[String]) -> Result<Self> {
        let min = Self::MIN_SIZE as usize + extra.len();
        if (size as usize) < min {
            return Err(SynthError::InvalidOptions(format!(
                "a BPE vocabulary with {} extra control tokens needs at least {min} tokens, got {size}",
                extra.len()
            )));
        }
        let room = size as usize - 256 - Self::N_SPECIAL - extra.len();
        let (merged, merges) = learn_merges(CORPUS, room.min(MAX_MERGES));

        let table = byte_to_char();
        let mut tokens: Vec<String> = byte_order()
            .into_iter()
            .map(|b| table[b as usize].to_string())
            .collect();
        tokens.extend(merged);
        let mut token_types = vec![token_type::NORMAL; tokens.len()];

        let mut push = |text: &str, ty: i32, tokens: &mut Vec<String>| {
            tokens.push(text.to_owned());
            token_types.push(ty);
            (tokens.len() - 1) as u32
        };
        let endoftext = push(ENDOFTEXT, token_type::CONTROL, &mut tokens);
        let im_start = push(IM_START, token_type::CONTROL, &mut tokens);
        let im_end = push(IM_END, token_type::CONTROL, &mut tokens);
        for t in USER_DEFINED {
            push(t, token_type::USER_DEFINED, &mut tokens);
        }
        for t in extra {
            // A duplicate text would make llama.cpp's text-to-id map ambiguous.
            if t.is_empty() || tokens.contains(t) {
                return Err(SynthError::InvalidOptions(format!(
                    "extra control token {t:?} is empty or already in the vocabulary"
                )));
            }
            push(t, token_type::CONTROL, &mut tokens);
        }
        while tokens.len() < size as usize {
            let id = tokens.len();
            push(&format!("[PAD{id}]"), token_type::UNUSED, &mut tokens);
        }
        Ok(Self {
            tokens,
            token_types,
            merges,
            endoftext,
            im_start,
            im_end,
        })
    }

    /// The tokenizer metadata: model `gpt2`, pre-tokenizer `pre`, tokens,
    /// types, merges, special ids (BOS and padding `<|endoftext|>`, EOS and
    /// EOT `<|im_end|>`), whether to add BOS, and the ChatML template.
    #[must_use]
    pub fn metadata(&self, pre: &str, add_bos: bool) -> Metadata {
        self.metadata_with_template(pre, add_bos, CHATML_TEMPLATE)
    }

    /// [`Self::metadata`] with `template` as `tokenizer.chat_template` instead of ChatML.
    #[must_use]
    pub fn metadata_with_template(&self, pre: &str, add_bos: bool, template: &str) -> Metadata {
        let mut m = Metadata::default();
        m.set("tokenizer.ggml.model", MetaValue::Str("gpt2".into()));
        m.set("tokenizer.ggml.pre", MetaValue::Str(pre.into()));
        m.set(
            "tokenizer.ggml.tokens",
            MetaValue::ArrStr(self.tokens.clone()),
        );
        m.set(
            "tokenizer.ggml.token_type",
            MetaValue::ArrI32(self.token_types.clone()),
        );
        m.set(
            "tokenizer.ggml.merges",
            MetaValue::ArrStr(self.merges.clone()),
        );
        m.set(
            "tokenizer.ggml.bos_token_id",
            MetaValue::U32(self.endoftext),
        );
        m.set("tokenizer.ggml.eos_token_id", MetaValue::U32(self.im_end));
        m.set("tokenizer.ggml.eot_token_id", MetaValue::U32(self.im_end));
        m.set(
            "tokenizer.ggml.padding_token_id",
            MetaValue::U32(self.endoftext),
        );
        m.set("tokenizer.ggml.add_bos_token", MetaValue::Bool(add_bos));
        m.set("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
        m.set("tokenizer.chat_template", MetaValue::Str(template.into()));
        m
    }
}

/// Metadata for [`Vocab::None`]: llama.cpp then makes `size` dummy tokens
/// from `<arch>.vocab_size` (set by the architecture builder).
#[must_use]
pub fn no_vocab_metadata() -> Metadata {
    let mut m = Metadata::default();
    m.set("tokenizer.ggml.model", MetaValue::Str("no_vocab".into()));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection() {
        let t = byte_to_char();
        let mut seen: Vec<char> = t.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], '\u{120}'); // 'Ġ'
        assert_eq!(t[b'\n' as usize], '\u{10A}'); // 'Ċ'
    }

    #[test]
    fn vocabulary_has_bytes_merges_specials_and_padding() {
        let v = BpeVocab::build(1024).unwrap();
        assert_eq!(v.tokens.len(), 1024);
        assert_eq!(v.tokens[0], "!");
        assert!(v.merges.len() > 100, "only {} merges", v.merges.len());
        assert_eq!(v.tokens[v.endoftext as usize], ENDOFTEXT);
        assert!(
            v.tokens[256..v.endoftext as usize]
                .iter()
                .all(|t| t.chars().count() >= 2)
        );
        assert_eq!(v.tokens[v.im_end as usize], IM_END);
        // every merge joins two existing tokens into a later one
        let index: HashMap<&str, usize> = v
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        assert_eq!(index.len(), v.tokens.len(), "token texts are unique");
        for m in &v.merges {
            let (l, r) = m.split_once(' ').unwrap();
            let joined = format!("{l}{r}");
            assert!(
                index[l] < index[joined.as_str()] && index[r] < index[joined.as_str()],
                "{m}"
            );
        }
        assert!(v.merges.iter().any(|m| m == "Ġ t"));
        assert_eq!(v, BpeVocab::build(1024).unwrap());
    }

    #[test]
    fn extra_controls_take_padding_slots() {
        let plain = BpeVocab::build(1024).unwrap();
        let extra = ["<|eot_id|>".to_owned(), "<|start|>".to_owned()];
        let v = BpeVocab::build_with_controls(1024, &extra).unwrap();
        assert_eq!(v.tokens.len(), 1024);
        assert_eq!(v.merges, plain.merges);
        let at = v.im_end as usize + 1 + USER_DEFINED.len();
        assert_eq!(v.tokens[at..at + 2], extra);
        assert_eq!(v.token_types[at..at + 2], [token_type::CONTROL; 2]);
        assert_eq!(BpeVocab::build_with_controls(1024, &[]).unwrap(), plain);
        let dup = [IM_END.to_owned()];
        assert!(BpeVocab::build_with_controls(1024, &dup).is_err());
        assert!(BpeVocab::build_with_controls(BpeVocab::MIN_SIZE, &extra[..1]).is_err());
    }

    #[test]
    fn small_sizes_are_rejected_or_exact() {
        assert!(BpeVocab::build(BpeVocab::MIN_SIZE - 1).is_err());
        let v = BpeVocab::build(BpeVocab::MIN_SIZE).unwrap();
        assert!(v.merges.is_empty());
        assert_eq!(v.tokens.len(), BpeVocab::MIN_SIZE as usize);
    }

    #[test]
    fn pretokenizer_keeps_all_text() {
        let s = "Hello, world!  It's 2024.\n\nnext  line 日本語";
        assert_eq!(pretokenize(s).concat(), s);
        assert!(pretokenize(s).contains(&" world"));
    }
}
