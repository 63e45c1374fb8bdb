//! The token list, as llama.cpp's vocabulary loader reads it (src/llama-vocab.cpp).
//!
//! - Every token string must be distinct: the loader maps strings to ids and then
//!   `GGML_ASSERT`s that the map is as large as the list. It reads each string up to its
//!   first NUL, so "a\0x" and "a\0y" count as equal, and an empty string as `[EMPTY_<id>]`.
//! - A WPM (`bert`) vocabulary cannot hold byte tokens (type 6): building the piece cache
//!   at load reaches `token_to_byte`, which `GGML_ABORT`s for WPM.

use std::collections::HashMap;

use super::{Keys, abort_reason};

/// `LLAMA_TOKEN_TYPE_BYTE` in `tokenizer.ggml.token_type`.
const TOKEN_TYPE_BYTE: i32 = 6;

/// Checks the token list of `keys`.
pub(super) fn check(keys: &Keys<'_>) -> Result<(), String> {
    // llama.cpp reads the tokenizer model with overrides, the token arrays without.
    let model_key = "tokenizer.ggml.model";
    let Some(model) = keys.string(model_key) else {
        return Ok(()); // required: llama.cpp fails the load cleanly without it
    };
    if model == "no_vocab" || model == "none" {
        return Ok(()); // the token list is not read
    }
    let key = "tokenizer.ggml.tokens";
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut dup = None;
    keys.meta().for_each_str(key, |i, text| {
        if dup.is_some() {
            return;
        }
        let text = if text.is_empty() {
            format!("[EMPTY_{i}]").into_bytes()
        } else {
            text.to_vec()
        };
        if let Some(&first) = seen.get(&text) {
            dup = Some((first, i, text));
        } else {
            seen.insert(text, i);
        }
    });
    if let Some((first, i, text)) = dup {
        let shown: String = String::from_utf8_lossy(&text).chars().take(48).collect();
        return Err(abort_reason(format!(
            "{key}: token {i} = {shown:?} repeats token {first} (as read up to a NUL byte)"
        )));
    }
    if model == "bert" {
        let types_key = "tokenizer.ggml.token_type";
        let types = keys.meta().i32_array(types_key).unwrap_or_default();
        let n = seen.len();
        if let Some(i) = types.iter().take(n).position(|&t| t == TOKEN_TYPE_BYTE) {
            return Err(abort_reason(format!(
                "{types_key}: token {i} has type {TOKEN_TYPE_BYTE} (byte), which a \
                 {model_key} = \"bert\" (WPM) vocabulary cannot hold"
            )));
        }
    }
    Ok(())
}
