//! Owning handles over `llama_sampler`: [`RawSampler`], one sampler not yet in a chain,
//! and [`RawChain`], a chain that owns the samplers added to it. The calls that can throw
//! go through the exception shim (`llama_sys_sampler_*`), whose message comes back as
//! `Err(String)`.
//!
//! Both carry the lifetime `'v` of the vocabulary their grammar, infill and DRY samplers
//! keep a pointer to, so neither can outlive the model.

use std::ffi::{CStr, CString, c_char};
use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use super::shim::ErrBuf;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::vocab::Vocab;

/// One sampler, owned until it is added to a [`RawChain`] (freed on drop otherwise).
pub(crate) struct RawSampler<'v> {
    ptr: NonNull<sys::llama_sampler>,
    _vocab: PhantomData<&'v sys::llama_vocab>,
}

impl Drop for RawSampler<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the sampler (adding it to a chain consumes the handle).
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}

impl<'v> RawSampler<'v> {
    /// Takes ownership of `p`; `None` for NULL (llama.cpp could not make the sampler).
    ///
    /// # Safety
    /// `p` is NULL or a sampler nobody else owns, whose vocabulary (if any) lives for `'v`.
    pub(super) unsafe fn from_ptr(p: *mut sys::llama_sampler) -> Option<Self> {
        NonNull::new(p).map(|ptr| Self {
            ptr,
            _vocab: PhantomData,
        })
    }

    /// Gives the sampler up to C, which frees it (a clone callback's answer).
    pub(super) fn into_ptr(self) -> *mut sys::llama_sampler {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Always the most likely token.
    pub(crate) fn greedy() -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_greedy()) }
    }

    /// Samples from the distribution with a seeded RNG.
    pub(crate) fn dist(seed: u32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_dist(seed)) }
    }

    /// Keeps the `k` most likely tokens.
    pub(crate) fn top_k(k: i32) -> Option<Self> {
        // SAFETY: no preconditions (k <= 0 keeps every token); a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_top_k(k)) }
    }

    /// Nucleus sampling.
    pub(crate) fn top_p(p: f32, min_keep: usize) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_top_p(p, min_keep)) }
    }

    /// Drops tokens below `p` times the top probability.
    pub(crate) fn min_p(p: f32, min_keep: usize) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_min_p(p, min_keep)) }
    }

    /// Locally typical sampling.
    pub(crate) fn typical(p: f32, min_keep: usize) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_typical(p, min_keep)) }
    }

    /// Temperature.
    pub(crate) fn temp(t: f32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_temp(t)) }
    }

    /// Dynamic temperature.
    pub(crate) fn temp_ext(t: f32, delta: f32, exponent: f32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_temp_ext(t, delta, exponent)) }
    }

    /// Exclude-top-choices sampling.
    pub(crate) fn xtc(p: f32, t: f32, min_keep: usize, seed: u32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_xtc(p, t, min_keep, seed)) }
    }

    /// Top-n-sigma.
    pub(crate) fn top_n_sigma(n: f32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_top_n_sigma(n)) }
    }

    /// Adaptive-p (selects).
    pub(crate) fn adaptive_p(target: f32, decay: f32, seed: u32) -> Option<Self> {
        // SAFETY: no preconditions (decay is clamped inside); a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_adaptive_p(target, decay, seed)) }
    }

    /// Mirostat v1 (selects) over a vocabulary of `n_vocab` tokens.
    pub(crate) fn mirostat(n_vocab: i32, seed: u32, tau: f32, eta: f32, m: i32) -> Option<Self> {
        // SAFETY: no preconditions (`n_vocab` only scales an estimate); a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_mirostat(n_vocab, seed, tau, eta, m)) }
    }

    /// Mirostat v2 (selects).
    pub(crate) fn mirostat_v2(seed: u32, tau: f32, eta: f32) -> Option<Self> {
        // SAFETY: no preconditions; a new sampler we own.
        unsafe { Self::from_ptr(sys::llama_sampler_init_mirostat_v2(seed, tau, eta)) }
    }

    /// Fill-in-the-middle; `None` as well for a vocabulary with neither an EOT nor an EOS
    /// token (llama.cpp aborts when it needs one).
    pub(crate) fn infill(vocab: Vocab<'v>) -> Option<Self> {
        if vocab.eot().is_none() && vocab.eos().is_none() {
            return None;
        }
        // SAFETY: a valid vocabulary with an end token (checked above); the sampler keeps
        // the pointer, and `'v` keeps the vocabulary alive as long as the sampler.
        unsafe { Self::from_ptr(sys::llama_sampler_init_infill(vocab.as_ptr())) }
    }

    /// Adds each bias to its token's logit; `None` as well when a token is outside
    /// `0..n_vocab` (the sampler indexes the logits with it).
    pub(crate) fn logit_bias(n_vocab: i32, biases: &[sys::llama_logit_bias]) -> Option<Self> {
        if biases.iter().any(|b| !(0..n_vocab).contains(&b.token)) {
            return None;
        }
        let n = i32::try_from(biases.len()).ok()?;
        // SAFETY: token ids checked above; `biases` is valid for `n` entries during the
        // call (llama.cpp copies them); a new sampler we own.
        unsafe {
            Self::from_ptr(sys::llama_sampler_init_logit_bias(
                n_vocab,
                n,
                biases.as_ptr(),
            ))
        }
    }

    /// Repetition, frequency and presence penalties over the last `last_n` tokens; `Err`
    /// with the exception's message (empty when none was thrown) when it was not made.
    pub(crate) fn penalties(
        n_vocab: i32,
        last_n: i32,
        repeat: f32,
        freq: f32,
        present: f32,
    ) -> std::result::Result<Self, String> {
        let mut e = ErrBuf::new();
        // SAFETY: plain values; the shim catches the exception of a history buffer sized by
        // `last_n` that cannot be allocated; `e` is writable for its length.
        let p = unsafe {
            sys::llama_sys_sampler_init_penalties(
                n_vocab,
                last_n,
                repeat,
                freq,
                present,
                e.ptr(),
                e.len(),
            )
        };
        // SAFETY: NULL or a new sampler we own.
        unsafe { Self::from_ptr(p) }.ok_or_else(|| e.text())
    }

    /// DRY penalty, as [`penalties`](Self::penalties) for errors.
    pub(crate) fn dry(
        vocab: Vocab<'v>,
        multiplier: f32,
        base: f32,
        allowed_length: i32,
        last_n: i32,
        breakers: &[CString],
    ) -> std::result::Result<Self, String> {
        let mut ptrs: Vec<*const c_char> = breakers.iter().map(|c| c.as_ptr()).collect();
        let mut e = ErrBuf::new();
        // SAFETY: a valid vocabulary, which `'v` keeps alive; the breaker strings are
        // NUL-terminated and live until the call returns (copied inside); the shim catches
        // exceptions (allocations sized by `last_n` and the breakers).
        let p = unsafe {
            sys::llama_sys_sampler_init_dry(
                vocab.as_ptr(),
                multiplier,
                base,
                allowed_length,
                last_n,
                ptrs.as_mut_ptr(),
                ptrs.len(),
                e.ptr(),
                e.len(),
            )
        };
        // SAFETY: NULL or a new sampler we own.
        unsafe { Self::from_ptr(p) }.ok_or_else(|| e.text())
    }

    /// A GBNF grammar rooted at `root`: the sampler (`None` if llama.cpp refused the text,
    /// which it logs) and the message of an exception the shim caught (empty if none).
    pub(crate) fn grammar(vocab: Vocab<'v>, gbnf: &CStr, root: &CStr) -> (Option<Self>, String) {
        let mut e = ErrBuf::new();
        // SAFETY: a valid vocabulary, which `'v` keeps alive (the grammar keeps the
        // pointer); strings NUL-terminated; llama.cpp catches parse errors and returns NULL,
        // the shim catches the rest (allocations sized by the grammar).
        let p = unsafe {
            sys::llama_sys_sampler_init_grammar(
                vocab.as_ptr(),
                gbnf.as_ptr(),
                root.as_ptr(),
                e.ptr(),
                e.len(),
            )
        };
        // SAFETY: NULL or a new sampler we own.
        (unsafe { Self::from_ptr(p) }, e.text())
    }

    /// A grammar that applies once output matches one of `patterns` or one of `tokens`
    /// appears, as [`grammar`](Self::grammar).
    pub(crate) fn grammar_lazy_patterns(
        vocab: Vocab<'v>,
        gbnf: &CStr,
        root: &CStr,
        patterns: &[CString],
        tokens: &[sys::llama_token],
    ) -> (Option<Self>, String) {
        let mut pat_ptrs: Vec<*const c_char> = patterns.iter().map(|c| c.as_ptr()).collect();
        let mut e = ErrBuf::new();
        // SAFETY: as in `grammar`; the pattern strings and token ids are valid for the call
        // (copied inside); the shim turns C++ exceptions (a bad regex) into NULL.
        let p = unsafe {
            sys::llama_sys_sampler_init_grammar_lazy_patterns(
                vocab.as_ptr(),
                gbnf.as_ptr(),
                root.as_ptr(),
                pat_ptrs.as_mut_ptr(),
                pat_ptrs.len(),
                tokens.as_ptr(),
                tokens.len(),
                e.ptr(),
                e.len(),
            )
        };
        // SAFETY: NULL or a new sampler we own.
        (unsafe { Self::from_ptr(p) }, e.text())
    }
}

/// A sampler chain (`llama_sampler_chain_init`), owning the samplers added to it, for a
/// vocabulary of `n_vocab` tokens.
pub(crate) struct RawChain<'v> {
    ptr: NonNull<sys::llama_sampler>,
    n_vocab: i32,
    /// Set when a call threw (the shim caught it): a grammar that threw while accepting
    /// has no state left, and llama.cpp asserts when it is applied again. Cleared by a
    /// reset that did not throw.
    threw: bool,
    _vocab: PhantomData<&'v sys::llama_vocab>,
}

// SAFETY: a chain is plain heap state, used through `&mut self` by one thread at a time
// (it is not `Sync`); the Rust samplers it may own are `Send` (`CustomSampler: Send`).
unsafe impl Send for RawChain<'_> {}

impl Drop for RawChain<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the chain, which frees the samplers it owns.
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}

impl<'v> RawChain<'v> {
    /// An empty chain with default parameters; `None` if it could not be allocated.
    pub(crate) fn new(n_vocab: i32) -> Option<Self> {
        // SAFETY: returns default parameters by value; `chain_init` allocates a new chain
        // (NULL on failure) that we own.
        let p = unsafe { sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params()) };
        NonNull::new(p).map(|ptr| Self {
            ptr,
            n_vocab,
            threw: false,
            _vocab: PhantomData,
        })
    }

    /// Whether a call threw since the last successful reset (see the field).
    pub(crate) fn threw(&self) -> bool {
        self.threw
    }

    /// Appends `s`; the chain owns it from here.
    pub(crate) fn add(&mut self, s: RawSampler<'v>) {
        // SAFETY: a valid chain; `into_ptr` hands the sampler over, and the chain frees it.
        unsafe { sys::llama_sampler_chain_add(self.ptr.as_ptr(), s.into_ptr()) };
    }

    /// Samples from the logits of output `idx` of `ctx`'s last decode and accepts the
    /// token: the outer `Err` when `idx` has no logits or `ctx`'s vocabulary is not this
    /// chain's, the inner one with the message of an exception the shim caught.
    pub(crate) fn sample(
        &mut self,
        ctx: &mut Context<'_>,
        idx: i32,
    ) -> Result<std::result::Result<sys::llama_token, String>> {
        // llama.cpp asserts that the row exists, and its samplers index vocabulary-sized
        // arrays with the ids of the context's model.
        ctx.logits(idx)?;
        if ctx.model().vocab().n_tokens() != self.n_vocab {
            return Err(Error::ChainVocabulary);
        }
        let (mut id, mut e) = (0, ErrBuf::new());
        // SAFETY: a valid chain and context (borrowed mutably for the call); `idx` has a row
        // of logits (checked above); the shim catches the exception a grammar throws when no
        // token can continue it; `id` and `e` are writable.
        let rc = unsafe {
            sys::llama_sys_sampler_sample(
                self.ptr.as_ptr(),
                ctx.raw().as_ptr(),
                idx,
                &mut id,
                e.ptr(),
                e.len(),
            )
        };
        Ok(self.outcome(rc, e).map(|()| id))
    }

    /// Records `token` in the chain's history: the outer `Err` for a token outside the
    /// vocabulary, the inner one with the message of an exception (a grammar's rejection).
    pub(crate) fn accept(
        &mut self,
        token: sys::llama_token,
    ) -> Result<std::result::Result<(), String>> {
        if !(0..self.n_vocab).contains(&token) {
            return Err(Error::InvalidToken {
                id: token,
                n_vocab: self.n_vocab,
            });
        }
        let mut e = ErrBuf::new();
        // SAFETY: a valid chain, a token of its vocabulary (checked above); the shim catches
        // a grammar's rejection.
        let rc =
            unsafe { sys::llama_sys_sampler_accept(self.ptr.as_ptr(), token, e.ptr(), e.len()) };
        Ok(self.outcome(rc, e))
    }

    fn outcome(&mut self, rc: i32, e: ErrBuf) -> std::result::Result<(), String> {
        if rc == 0 {
            return Ok(());
        }
        self.threw = true;
        Err(e.text())
    }

    /// Resets every sampler's history; `Err` with the message of an exception (a grammar
    /// that could not be rebuilt keeps its old state, so a chain that threw stays so).
    pub(crate) fn reset(&mut self) -> std::result::Result<(), String> {
        let mut e = ErrBuf::new();
        // SAFETY: a valid chain; the shim catches a grammar's exception while rebuilding.
        let rc = unsafe { sys::llama_sys_sampler_reset(self.ptr.as_ptr(), e.ptr(), e.len()) };
        if rc != 0 {
            return Err(e.text());
        }
        self.threw = false;
        Ok(())
    }

    /// The seed of the chain's last seeded sampler, `LLAMA_DEFAULT_SEED` if none.
    pub(crate) fn seed(&self) -> u32 {
        // SAFETY: a valid chain; only reads sampler state.
        unsafe { sys::llama_sampler_get_seed(self.ptr.as_ptr()) }
    }

    /// A copy in the current state; `Err` with the message of an exception.
    pub(crate) fn try_clone(&self) -> std::result::Result<RawChain<'v>, String> {
        let mut e = ErrBuf::new();
        // SAFETY: a valid chain; the shim catches C++ exceptions; the copy (NULL on an
        // exception) is a new chain we own, over the same vocabulary.
        let p = unsafe { sys::llama_sys_sampler_clone(self.ptr.as_ptr(), e.ptr(), e.len()) };
        NonNull::new(p)
            .map(|ptr| RawChain {
                ptr,
                n_vocab: self.n_vocab,
                threw: self.threw,
                _vocab: PhantomData,
            })
            .ok_or_else(|| e.text())
    }

    /// Applies member `i` alone to a one-entry candidate list holding `token` (logit 0),
    /// which changes no sampler state: the logit it leaves (`-inf` when the member masks
    /// the token out). `None` when there is no member `i`, `token` is outside the
    /// vocabulary, or a call threw since the last reset (a grammar without state asserts).
    pub(crate) fn apply_member(&mut self, i: i32, token: sys::llama_token) -> Option<f32> {
        if self.threw || !(0..self.n_vocab).contains(&token) {
            return None;
        }
        // SAFETY: a valid chain; `chain_get` checks `i` and returns NULL when out of range.
        let member = unsafe { sys::llama_sampler_chain_get(self.ptr.as_ptr(), i) };
        if member.is_null() {
            return None;
        }
        let mut data = sys::llama_token_data {
            id: token,
            logit: 0.0,
            p: 0.0,
        };
        let mut cur = sys::llama_token_data_array {
            data: &mut data,
            size: 1,
            selected: -1,
            sorted: false,
        };
        // SAFETY: a member of this chain, whose state is intact (nothing threw since the
        // last reset, checked above); `cur` points at one valid candidate, with an id of
        // the vocabulary, for the call.
        unsafe { sys::llama_sampler_apply(member, &mut cur) };
        Some(data.logit)
    }
}
