//! Special tokens the loaded vocabulary promises to add but does not have.
//!
//! llama.cpp disables a special token id that is out of range (with a warning) and falls
//! back to the vocabulary type's default, which may be none; `add_bos_token` /
//! `add_eos_token` stay as the file says. `llama_tokenize(add_special = true)` then
//! `GGML_ASSERT`s that the token exists. Which ids survive depends on the vocabulary type
//! and its defaults, so this is checked on the loaded model, through the C API.

use llamacpp_sys as sys;

use super::abort_reason;
use crate::model::Model;

/// `Err` when tokenizing with special tokens would abort on `model`'s vocabulary.
pub(crate) fn check_loaded(model: &Model) -> Result<(), String> {
    let v = model.raw().vocab();
    let (ty, add_bos, bos, add_eos, eos, sep) = (
        v.vocab_type(),
        v.adds_bos(),
        v.bos(),
        v.adds_eos(),
        v.eos(),
        v.sep(),
    );
    let missing = |flag: &str, what: &str, id_key: &str| {
        Err(abort_reason(format!(
            "tokenizer.ggml.{flag} = true, but the vocabulary has no {what} token \
             (tokenizer.ggml.{id_key} is missing or out of range and the tokenizer has no \
             default), so tokenizing with special tokens"
        )))
    };
    match ty {
        sys::LLAMA_VOCAB_TYPE_SPM
        | sys::LLAMA_VOCAB_TYPE_BPE
        | sys::LLAMA_VOCAB_TYPE_UGM
        | sys::LLAMA_VOCAB_TYPE_PLAMO2 => {
            if add_bos && bos == sys::LLAMA_TOKEN_NULL {
                return missing("add_bos_token", "BOS", "bos_token_id");
            }
            if add_eos && eos == sys::LLAMA_TOKEN_NULL {
                return missing("add_eos_token", "EOS", "eos_token_id");
            }
        }
        // WPM always adds both BOS ([CLS]) and SEP when asked for special tokens.
        sys::LLAMA_VOCAB_TYPE_WPM
            if bos == sys::LLAMA_TOKEN_NULL || sep == sys::LLAMA_TOKEN_NULL =>
        {
            return Err(abort_reason(format!(
                "tokenizer.ggml.model = \"bert\" adds BOS and SEP tokens, but the vocabulary \
                 lacks one (bos {bos}, sep {sep}: tokenizer.ggml.bos_token_id or \
                 tokenizer.ggml.seperator_token_id is missing or out of range), so tokenizing \
                 with special tokens"
            )));
        }
        _ => {}
    }
    Ok(())
}
