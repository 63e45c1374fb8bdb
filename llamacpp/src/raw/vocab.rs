//! [`RawVocab`]: a model's `llama_vocab`, borrowed from its [`RawModel`].
//!
//! llama.cpp asserts (aborts) when a vocabulary without a tokenizer (`no_vocab`) is
//! asked for token texts, attributes or pieces, or to tokenize, and indexes its token
//! table unchecked or with `.at` (an exception through plain C) for out-of-range ids:
//! the methods here check both and answer `None` instead of calling.

use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::backend::cstr_lossy;
use super::model::RawModel;
use super::shim::ErrBuf;

/// A model's vocabulary: a copyable borrow of its [`RawModel`].
#[derive(Clone, Copy)]
pub(crate) struct RawVocab<'m> {
    ptr: NonNull<sys::llama_vocab>,
    _model: PhantomData<&'m RawModel>,
}

// SAFETY: the vocabulary is read-only model data after loading; llama.cpp documents
// tokenization as thread-safe, and the getters only read.
unsafe impl Send for RawVocab<'_> {}
// SAFETY: as above.
unsafe impl Sync for RawVocab<'_> {}

impl<'m> RawVocab<'m> {
    /// # Safety
    /// `ptr` must be the vocabulary of a model that stays alive (and is not freed) for `'m`.
    pub(super) unsafe fn new(ptr: NonNull<sys::llama_vocab>) -> Self {
        RawVocab {
            ptr,
            _model: PhantomData,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const sys::llama_vocab {
        self.ptr.as_ptr()
    }

    pub(crate) fn n_tokens(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads it.
        unsafe { sys::llama_vocab_n_tokens(self.as_ptr()) }
    }

    /// `llama_vocab_type` (`LLAMA_VOCAB_TYPE_NONE` without a tokenizer).
    pub(crate) fn vocab_type(&self) -> sys::llama_vocab_type {
        // SAFETY: a live vocabulary ('m); the getter only reads it.
        unsafe { sys::llama_vocab_type(self.as_ptr()) }
    }

    fn has_tokenizer(&self) -> bool {
        self.vocab_type() != sys::LLAMA_VOCAB_TYPE_NONE
    }

    /// `id`, when it indexes the token table of a vocabulary with a tokenizer (the
    /// precondition of the per-token getters below).
    fn with_data(&self, id: i32) -> Option<i32> {
        (self.has_tokenizer() && (0..self.n_tokens()).contains(&id)).then_some(id)
    }

    pub(crate) fn bos(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_bos(self.as_ptr()) }
    }

    pub(crate) fn eos(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_eos(self.as_ptr()) }
    }

    pub(crate) fn eot(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_eot(self.as_ptr()) }
    }

    pub(crate) fn sep(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_sep(self.as_ptr()) }
    }

    pub(crate) fn nl(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_nl(self.as_ptr()) }
    }

    pub(crate) fn pad(&self) -> i32 {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_pad(self.as_ptr()) }
    }

    /// Fill-in-the-middle ids: (prefix, suffix, middle).
    pub(crate) fn fim(&self) -> (i32, i32, i32) {
        // SAFETY: a live vocabulary ('m); the getters only read fields.
        unsafe {
            (
                sys::llama_vocab_fim_pre(self.as_ptr()),
                sys::llama_vocab_fim_suf(self.as_ptr()),
                sys::llama_vocab_fim_mid(self.as_ptr()),
            )
        }
    }

    pub(crate) fn adds_bos(&self) -> bool {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_get_add_bos(self.as_ptr()) }
    }

    pub(crate) fn adds_eos(&self) -> bool {
        // SAFETY: a live vocabulary ('m); the getter only reads a field.
        unsafe { sys::llama_vocab_get_add_eos(self.as_ptr()) }
    }

    /// Whether `id` ends generation; any id may be asked (a set lookup in llama.cpp).
    pub(crate) fn is_eog(&self, id: i32) -> bool {
        // SAFETY: a live vocabulary ('m); llama.cpp looks the id up in a set, so no id is
        // out of range.
        unsafe { sys::llama_vocab_is_eog(self.as_ptr(), id) }
    }

    /// Whether `id` is a control token; `None` out of range or without a tokenizer.
    pub(crate) fn is_control(&self, id: i32) -> Option<bool> {
        let id = self.with_data(id)?;
        // SAFETY: a live vocabulary with a tokenizer, and `id` is in range (`with_data`):
        // llama.cpp indexes its token table with it unchecked.
        Some(unsafe { sys::llama_vocab_is_control(self.as_ptr(), id) })
    }

    /// The `LLAMA_TOKEN_ATTR_*` bits of `id`; `None` out of range or without a tokenizer.
    pub(crate) fn attr(&self, id: i32) -> Option<sys::llama_token_attr> {
        let id = self.with_data(id)?;
        // SAFETY: a live vocabulary with a tokenizer (else llama.cpp asserts), `id` in
        // range (else `.at` throws through C): both checked by `with_data`.
        Some(unsafe { sys::llama_vocab_get_attr(self.as_ptr(), id) })
    }

    /// The text of `id` as stored; `None` out of range or without a tokenizer.
    pub(crate) fn text(&self, id: i32) -> Option<String> {
        let id = self.with_data(id)?;
        // SAFETY: as for `attr`; the returned string is owned by the vocabulary, which
        // outlives the copy.
        Some(unsafe { cstr_lossy(sys::llama_vocab_get_text(self.as_ptr(), id)) })
    }

    /// `llama_tokenize` through the exception shim into `out`: the count (negative: minus
    /// the room needed), or the shim's message when the tokenizer threw. `None` without a
    /// tokenizer (llama.cpp asserts) or for a text of 2^31 bytes or more.
    pub(crate) fn tokenize(
        &self,
        text: &str,
        out: &mut [i32],
        add_special: bool,
        parse_special: bool,
    ) -> Option<Result<i32, String>> {
        let len = i32::try_from(text.len()).ok()?;
        if !self.has_tokenizer() {
            return None;
        }
        // Claiming less room than there is stays in bounds.
        let cap = i32::try_from(out.len()).unwrap_or(i32::MAX);
        let (mut n, mut e) = (0, ErrBuf::new());
        // SAFETY: a live vocabulary with a tokenizer; `text` is valid for `len` bytes and
        // `out` for `cap` tokens; the shim catches what the tokenizer throws (a malformed
        // vocabulary in the file).
        let rc = unsafe {
            sys::llama_sys_tokenize(
                self.as_ptr(),
                text.as_ptr().cast(),
                len,
                out.as_mut_ptr(),
                cap,
                add_special,
                parse_special,
                &mut n,
                e.ptr(),
                e.len(),
            )
        };
        Some(if rc == 0 { Ok(n) } else { Err(e.text()) })
    }

    /// `llama_token_to_piece` through the shim into `buf`: the length (negative: minus the
    /// room needed) or the shim's message. `None` out of range or without a tokenizer.
    pub(crate) fn token_to_piece(
        &self,
        id: i32,
        buf: &mut [u8],
        special: bool,
    ) -> Option<Result<i32, String>> {
        let id = self.with_data(id)?;
        let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        let (mut n, mut e) = (0, ErrBuf::new());
        // SAFETY: a live vocabulary with a tokenizer, `id` in range (`with_data`), `buf`
        // valid for `cap` bytes; the shim catches exceptions.
        let rc = unsafe {
            sys::llama_sys_token_to_piece(
                self.as_ptr(),
                id,
                buf.as_mut_ptr().cast(),
                cap,
                0,
                special,
                &mut n,
                e.ptr(),
                e.len(),
            )
        };
        Some(if rc == 0 { Ok(n) } else { Err(e.text()) })
    }

    /// `llama_detokenize` through the shim into `buf`: the length (negative: minus the room
    /// needed) or the shim's message. `None` for 2^31 ids or more.
    pub(crate) fn detokenize(
        &self,
        ids: &[i32],
        buf: &mut [u8],
        remove_special: bool,
        unparse_special: bool,
    ) -> Option<Result<i32, String>> {
        let n_ids = i32::try_from(ids.len()).ok()?;
        let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        let (mut n, mut e) = (0, ErrBuf::new());
        // SAFETY: a live vocabulary; `ids` holds `n_ids` ids and `buf` `cap` bytes;
        // llama.cpp returns 0 without a tokenizer, and an id out of range makes it throw
        // (`.at`), which the shim catches.
        let rc = unsafe {
            sys::llama_sys_detokenize(
                self.as_ptr(),
                ids.as_ptr(),
                n_ids,
                buf.as_mut_ptr().cast(),
                cap,
                remove_special,
                unparse_special,
                &mut n,
                e.ptr(),
                e.len(),
            )
        };
        Some(if rc == 0 { Ok(n) } else { Err(e.text()) })
    }
}
