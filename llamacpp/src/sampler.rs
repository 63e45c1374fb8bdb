//! Sampler chains: a builder over llama.cpp's samplers (and Rust ones, see
//! [`CustomSampler`]) that always ends in a selecting sampler, with grammar
//! errors and sampler panics as `Err`.
//!
//! Every sampler of the pinned `llama.h` is offered except two, on purpose:
//! `llama_sampler_init_grammar_lazy` (deprecated upstream; [`SamplerBuilder::grammar_lazy`]
//! uses its replacement, `_lazy_patterns`) and `llama_sampler_init_dry_testing`
//! (not in `llama.h`: a test hook of upstream's sampler tests).

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::backend;
use crate::boundary::ErrBuf;
use crate::context::Context;
use crate::custom_sampler::{self, CustomSampler};
use crate::error::{Error, Result, c_string};
use crate::vocab::{Token, Vocab};

/// An owned sampler chain. Build it with [`SamplerChain::builder`].
///
/// It borrows the model whose vocabulary built it: grammar and infill samplers
/// keep a pointer to that vocabulary, so the chain cannot outlive the model.
///
/// ```compile_fail
/// # fn demo(path: &str) -> llamacpp::Result<()> {
/// let model = llamacpp::Model::load(path, llamacpp::ModelParams::default())?;
/// let chain = llamacpp::SamplerChain::builder(model.vocab()).greedy().build()?;
/// drop(model); // error: `model` is still borrowed by `chain`
/// drop(chain);
/// # Ok(()) }
/// ```
pub struct SamplerChain<'v> {
    ptr: NonNull<sys::llama_sampler>,
    n_vocab: i32,
    /// Rust samplers in the chain: when non-zero, calls check for their errors.
    n_custom: usize,
    /// Where the chain's grammar samplers sit in it.
    grammars: Vec<i32>,
    /// Set when a grammar rejected a token (llama.cpp threw while accepting it): its
    /// state is gone, and llama.cpp asserts on the next use, so the chain refuses every
    /// call but `reset` until then.
    grammar_failed: bool,
    /// Tells end-of-generation tokens, which a grammar must be checked for before accepting.
    vocab: Vocab<'v>,
    _vocab: PhantomData<Vocab<'v>>,
}

// SAFETY: a sampler chain is plain heap state used by one thread at a time (`&mut self`);
// the Rust samplers it owns are `Send`.
unsafe impl Send for SamplerChain<'_> {}

impl Drop for SamplerChain<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the chain (which owns its samplers).
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for SamplerChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplerChain").finish_non_exhaustive()
    }
}

/// Builds a [`SamplerChain`]; [`build`](Self::build) fails unless the last
/// sampler selects a token (greedy, dist, mirostat).
///
/// ```no_run
/// # fn demo(model: &llamacpp::Model) -> llamacpp::Result<()> {
/// let chain = llamacpp::SamplerChain::builder(model.vocab()).top_k(40).temp(0.8).dist(42).build()?;
/// # Ok(()) }
/// ```
pub struct SamplerBuilder<'v> {
    vocab: Vocab<'v>,
    samplers: Vec<NonNull<sys::llama_sampler>>,
    selects: bool,
    n_custom: usize,
    /// Indices in `samplers` of the grammar samplers.
    grammars: Vec<i32>,
    error: Option<Error>,
}

impl Drop for SamplerBuilder<'_> {
    fn drop(&mut self) {
        for s in self.samplers.drain(..) {
            // SAFETY: samplers not yet moved into a chain are still ours.
            unsafe { sys::llama_sampler_free(s.as_ptr()) }
        }
    }
}

impl<'v> SamplerBuilder<'v> {
    fn push(
        mut self,
        p: *mut sys::llama_sampler,
        selects: bool,
        what: &'static str,
        log: String,
    ) -> Self {
        match NonNull::new(p) {
            Some(p) => {
                self.samplers.push(p);
                self.selects = selects;
            }
            None if self.error.is_none() => {
                self.error = Some(Error::SamplerNotCreated { sampler: what, log });
            }
            None => {}
        }
        self
    }

    fn filter(self, p: *mut sys::llama_sampler, what: &'static str) -> Self {
        self.push(p, false, what, String::new())
    }

    /// Always the most likely token.
    pub fn greedy(self) -> Self {
        // SAFETY: no preconditions.
        let p = unsafe { sys::llama_sampler_init_greedy() };
        self.push(p, true, "greedy", String::new())
    }

    /// Samples from the distribution with a seeded RNG.
    pub fn dist(self, seed: u32) -> Self {
        // SAFETY: no preconditions.
        let p = unsafe { sys::llama_sampler_init_dist(seed) };
        self.push(p, true, "dist", String::new())
    }

    /// Keeps the `k` most likely tokens.
    pub fn top_k(self, k: i32) -> Self {
        // SAFETY: no preconditions.
        self.filter(unsafe { sys::llama_sampler_init_top_k(k) }, "top_k")
    }

    /// Nucleus sampling.
    pub fn top_p(self, p: f32, min_keep: usize) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_top_p(p, min_keep) },
            "top_p",
        )
    }

    /// Drops tokens below `p` times the top probability.
    pub fn min_p(self, p: f32, min_keep: usize) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_min_p(p, min_keep) },
            "min_p",
        )
    }

    /// Locally typical sampling.
    pub fn typical(self, p: f32, min_keep: usize) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_typical(p, min_keep) },
            "typical",
        )
    }

    /// Temperature.
    pub fn temp(self, t: f32) -> Self {
        // SAFETY: no preconditions.
        self.filter(unsafe { sys::llama_sampler_init_temp(t) }, "temp")
    }

    /// Dynamic temperature.
    pub fn temp_ext(self, t: f32, delta: f32, exponent: f32) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_temp_ext(t, delta, exponent) },
            "temp_ext",
        )
    }

    /// Exclude-top-choices sampling.
    pub fn xtc(self, p: f32, t: f32, min_keep: usize, seed: u32) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_xtc(p, t, min_keep, seed) },
            "xtc",
        )
    }

    /// Top-n-sigma.
    pub fn top_n_sigma(self, n: f32) -> Self {
        // SAFETY: no preconditions.
        self.filter(
            unsafe { sys::llama_sampler_init_top_n_sigma(n) },
            "top_n_sigma",
        )
    }

    /// Adaptive-p (selects): favours tokens near probability `target` (0..=1; negative
    /// disables the transform), tracked with an exponential moving average of
    /// decay `decay` (clamped to 0..=0.99). Best after a mild `min_p` only.
    pub fn adaptive_p(self, target: f32, decay: f32, seed: u32) -> Self {
        if !(target.is_finite() && decay.is_finite()) {
            let mut s = self;
            s.error.get_or_insert(Error::SamplerParameter {
                sampler: "adaptive_p",
                reason: "target and decay must be finite",
            });
            return s;
        }
        // SAFETY: no preconditions (decay is clamped inside).
        let p = unsafe { sys::llama_sampler_init_adaptive_p(target, decay, seed) };
        self.push(p, true, "adaptive_p", String::new())
    }

    /// Fill-in-the-middle: merges candidates that share a prefix and prefers
    /// end-of-generation when text is unlikely. Put it after `top_k`/`top_p`: it
    /// compares every pair of candidates. Fails to build for a vocabulary with
    /// neither an EOT nor an EOS token (llama.cpp would abort when it needs one).
    pub fn infill(self) -> Self {
        if self.vocab.eot().is_none() && self.vocab.eos().is_none() {
            let mut s = self;
            s.error.get_or_insert(Error::SamplerParameter {
                sampler: "infill",
                reason: "the vocabulary has no EOT or EOS token",
            });
            return s;
        }
        let vocab = self.vocab.as_ptr();
        // SAFETY: vocab valid; the chain borrows the model, so the pointer outlives the sampler.
        self.filter(unsafe { sys::llama_sampler_init_infill(vocab) }, "infill")
    }

    /// A sampler written in Rust (see [`CustomSampler`] for how panics are
    /// handled). It selects, and may end the chain, if its
    /// [`selects`](CustomSampler::selects) says so.
    pub fn custom(mut self, sampler: impl CustomSampler + 'static) -> Self {
        let name = custom_sampler::c_name(sampler.name());
        let selects = sampler.selects();
        let p = custom_sampler::new_raw(Box::new(sampler), name, selects, None);
        if !p.is_null() {
            self.n_custom += 1;
        }
        self.push(p, selects, "custom sampler", String::new())
    }

    /// Mirostat v1 (selects).
    pub fn mirostat(self, seed: u32, tau: f32, eta: f32, m: i32) -> Self {
        let n_vocab = self.vocab.n_tokens();
        // SAFETY: no preconditions.
        let p = unsafe { sys::llama_sampler_init_mirostat(n_vocab, seed, tau, eta, m) };
        self.push(p, true, "mirostat", String::new())
    }

    /// Mirostat v2 (selects).
    pub fn mirostat_v2(self, seed: u32, tau: f32, eta: f32) -> Self {
        // SAFETY: no preconditions.
        let p = unsafe { sys::llama_sampler_init_mirostat_v2(seed, tau, eta) };
        self.push(p, true, "mirostat_v2", String::new())
    }

    /// Repetition, frequency and presence penalties over the last `last_n` tokens.
    pub fn penalties(self, last_n: i32, repeat: f32, freq: f32, present: f32) -> Self {
        if !(repeat > 0.0 && freq.is_finite() && present.is_finite()) {
            let mut s = self;
            s.error.get_or_insert(Error::SamplerParameter {
                sampler: "penalties",
                reason: "repeat must be > 0, freq and present finite",
            });
            return s;
        }
        let n_vocab = self.vocab.n_tokens();
        let mut e = ErrBuf::new();
        // SAFETY: arguments checked as the header requires; the shim catches the
        // exception of a history buffer sized by `last_n` that cannot be allocated.
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
        self.push(p, false, "penalties", e.text())
    }

    /// DRY ("don't repeat yourself") penalty.
    pub fn dry(
        self,
        multiplier: f32,
        base: f32,
        allowed_length: i32,
        last_n: i32,
        breakers: &[&str],
    ) -> Self {
        let owned: Result<Vec<CString>> = breakers.iter().map(|b| c_string(b)).collect();
        let owned = match owned {
            Ok(owned) => owned,
            Err(e) => {
                let mut s = self;
                s.error.get_or_insert(e);
                return s;
            }
        };
        let mut ptrs: Vec<*const std::ffi::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let vocab = self.vocab.as_ptr();
        let mut e = ErrBuf::new();
        // SAFETY: vocab valid; the breaker strings live until the call returns (copied
        // inside); the shim catches exceptions (allocations sized by `last_n`, breakers).
        let p = unsafe {
            sys::llama_sys_sampler_init_dry(
                vocab,
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
        self.push(p, false, "dry", e.text())
    }

    /// Adds `bias` to the logits of the given tokens.
    pub fn logit_bias(self, biases: &[(Token, f32)]) -> Self {
        let n_vocab = self.vocab.n_tokens();
        if let Some((t, _)) = biases.iter().find(|(t, _)| !(0..n_vocab).contains(&t.id())) {
            let mut s = self;
            s.error.get_or_insert(Error::InvalidToken {
                id: t.id(),
                n_vocab,
            });
            return s;
        }
        let raw: Vec<sys::llama_logit_bias> = biases
            .iter()
            .map(|(t, b)| sys::llama_logit_bias {
                token: t.id(),
                bias: *b,
            })
            .collect();
        // SAFETY: token ids checked; `raw` valid for its length (copied inside).
        self.filter(
            unsafe { sys::llama_sampler_init_logit_bias(n_vocab, raw.len() as i32, raw.as_ptr()) },
            "logit_bias",
        )
    }

    /// Constrains output to a GBNF grammar (rooted at `root`). A grammar that
    /// does not parse makes [`build`](Self::build) fail.
    pub fn grammar(self, gbnf: &str, root: &str) -> Self {
        self.grammar_impl(gbnf, root, None)
    }

    /// A grammar that only applies once output matches one of `patterns`
    /// (regular expressions) or one of `tokens` appears.
    pub fn grammar_lazy(self, gbnf: &str, root: &str, patterns: &[&str], tokens: &[Token]) -> Self {
        self.grammar_impl(gbnf, root, Some((patterns, tokens)))
    }

    fn grammar_impl(self, gbnf: &str, root: &str, lazy: Option<(&[&str], &[Token])>) -> Self {
        let (g, r) = match (c_string(gbnf), c_string(root)) {
            (Ok(g), Ok(r)) => (g, r),
            (Err(e), _) | (_, Err(e)) => {
                let mut s = self;
                s.error.get_or_insert(e);
                return s;
            }
        };
        // What llama.cpp's parser cannot survive (endless rule generation, stack overflow).
        if let Err(e) = crate::grammar::check_gbnf(gbnf) {
            let mut s = self;
            s.error.get_or_insert(e);
            return s;
        }
        let vocab = self.vocab.as_ptr();
        let (p, log) = match lazy {
            None => {
                let mut e = ErrBuf::new();
                // SAFETY: vocab valid, strings NUL-terminated; llama.cpp catches parse errors
                // and returns NULL, the shim catches the rest (allocations sized by the grammar).
                let (p, log) = backend::capture_log(|| unsafe {
                    sys::llama_sys_sampler_init_grammar(
                        vocab,
                        g.as_ptr(),
                        r.as_ptr(),
                        e.ptr(),
                        e.len(),
                    )
                });
                (p, join(log, e.text()))
            }
            Some((patterns, tokens)) => {
                let pats: Result<Vec<CString>> = patterns.iter().map(|p| c_string(p)).collect();
                let pats = match pats {
                    Ok(pats) => pats,
                    Err(e) => {
                        let mut s = self;
                        s.error.get_or_insert(e);
                        return s;
                    }
                };
                let mut pat_ptrs: Vec<*const std::ffi::c_char> =
                    pats.iter().map(|c| c.as_ptr()).collect();
                let ids: Vec<i32> = tokens.iter().map(|t| t.id()).collect();
                let mut e = ErrBuf::new();
                // SAFETY: all pointers valid for the call; the shim turns C++ exceptions (bad regex) into NULL.
                let (p, log) = backend::capture_log(|| unsafe {
                    sys::llama_sys_sampler_init_grammar_lazy_patterns(
                        vocab,
                        g.as_ptr(),
                        r.as_ptr(),
                        pat_ptrs.as_mut_ptr(),
                        pat_ptrs.len(),
                        ids.as_ptr(),
                        ids.len(),
                        e.ptr(),
                        e.len(),
                    )
                });
                (p, join(log, e.text()))
            }
        };
        if p.is_null() {
            // llama.cpp's parser refused the text; its log says where.
            let mut s = self;
            s.error.get_or_insert(Error::Grammar(if log.is_empty() {
                "llama.cpp could not parse it".into()
            } else {
                log
            }));
            return s;
        }
        let at = self.samplers.len() as i32;
        let mut s = self.push(p, false, "grammar", log);
        if s.samplers.len() as i32 > at {
            s.grammars.push(at);
        }
        s
    }

    /// Finishes the chain.
    pub fn build(mut self) -> Result<SamplerChain<'v>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.selects {
            return Err(Error::ChainWithoutSelector);
        }
        // SAFETY: returns default params by value; chain_init allocates a chain.
        let chain =
            unsafe { sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params()) };
        let chain = NonNull::new(chain).ok_or(Error::Null {
            what: "llama_sampler_chain_init",
            log: String::new(),
        })?;
        for s in self.samplers.drain(..) {
            // SAFETY: the chain takes ownership of each sampler.
            unsafe { sys::llama_sampler_chain_add(chain.as_ptr(), s.as_ptr()) };
        }
        Ok(SamplerChain {
            ptr: chain,
            n_vocab: self.vocab.n_tokens(),
            n_custom: self.n_custom,
            grammars: std::mem::take(&mut self.grammars),
            grammar_failed: false,
            vocab: self.vocab,
            _vocab: PhantomData,
        })
    }
}

impl<'v> SamplerChain<'v> {
    /// Starts a chain for models with this vocabulary.
    pub fn builder(vocab: Vocab<'v>) -> SamplerBuilder<'v> {
        backend::init();
        SamplerBuilder {
            vocab,
            samplers: Vec::new(),
            selects: false,
            n_custom: 0,
            grammars: Vec::new(),
            error: None,
        }
    }

    /// Runs a call into the chain; `Err` if one of its Rust samplers recorded an
    /// error meanwhile (chains without any skip the bookkeeping).
    fn call<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        if self.n_custom == 0 {
            return Ok(f());
        }
        match custom_sampler::isolated(f) {
            (r, None) => Ok(r),
            (_, Some(e)) => Err(e),
        }
    }

    /// Samples a token from the logits of batch index `idx` of the last decode,
    /// and records it in the chain's history (penalties, grammar).
    ///
    /// A panic in a Rust sampler is [`Error::CustomSampler`] (see [`CustomSampler`]).
    pub fn sample(&mut self, ctx: &mut Context<'_>, idx: i32) -> Result<Token> {
        self.check_grammar()?;
        ctx.logits(idx)?;
        if ctx.model().vocab().n_tokens() != self.n_vocab {
            return Err(Error::ChainVocabulary);
        }
        let (mut id, mut e) = (0, ErrBuf::new());
        let (chain, ctx_raw) = (self.ptr.as_ptr(), ctx_ptr(ctx));
        // SAFETY: `idx` is a checked output of the last decode; chain and context valid; the
        // shim catches the exception a grammar throws when no token can continue it.
        let rc = self.call(|| unsafe {
            sys::llama_sys_sampler_sample(chain, ctx_raw, idx, &mut id, e.ptr(), e.len())
        })?;
        if rc != 0 {
            self.grammar_failed = !self.grammars.is_empty();
            return Err(if self.grammar_failed {
                Error::GrammarRejected(e.text())
            } else {
                e.cpp("llama_sampler_sample")
            });
        }
        ctx.model().vocab().token(id)
    }

    /// Records a token chosen elsewhere (prompt tokens, for penalties and grammar).
    pub fn accept(&mut self, token: Token) -> Result<()> {
        if !(0..self.n_vocab).contains(&token.id()) {
            return Err(Error::InvalidToken {
                id: token.id(),
                n_vocab: self.n_vocab,
            });
        }
        self.check_grammar()?;
        if self.vocab.is_eog(token) {
            self.check_grammar_allows_end(token)?;
        }
        let mut e = ErrBuf::new();
        let chain = self.ptr.as_ptr();
        // SAFETY: valid chain, token in range; the shim catches a grammar's rejection.
        let rc = self.call(|| unsafe {
            sys::llama_sys_sampler_accept(chain, token.id(), e.ptr(), e.len())
        })?;
        if rc != 0 {
            self.grammar_failed = !self.grammars.is_empty();
            return Err(if self.grammar_failed {
                Error::GrammarRejected(e.text())
            } else {
                e.cpp("llama_sampler_accept")
            });
        }
        Ok(())
    }

    /// `Err` after a grammar rejected a token: llama.cpp's grammar then has no state left,
    /// and asserts (aborting the process) when it is next applied or fed.
    fn check_grammar(&self) -> Result<()> {
        if self.grammar_failed {
            return Err(Error::GrammarExhausted);
        }
        Ok(())
    }

    /// `Err` unless every grammar in the chain may end here: accepting an
    /// end-of-generation token into an unfinished grammar aborts inside llama.cpp.
    /// Each grammar is asked the way sampling asks it, by applying it to a
    /// one-token candidate list (which changes no grammar state): a grammar that
    /// cannot end masks the token out.
    fn check_grammar_allows_end(&mut self, token: Token) -> Result<()> {
        for &i in &self.grammars {
            // SAFETY: valid chain; `i` is the index the grammar was added at.
            let grammar = unsafe { sys::llama_sampler_chain_get(self.ptr.as_ptr(), i) };
            if grammar.is_null() {
                continue;
            }
            let mut data = sys::llama_token_data {
                id: token.id(),
                logit: 0.0,
                p: 0.0,
            };
            let mut cur = sys::llama_token_data_array {
                data: &mut data,
                size: 1,
                selected: -1,
                sorted: false,
            };
            // SAFETY: a grammar sampler of this chain (whose state is intact: checked by
            // `check_grammar`); `cur` points at one valid candidate for the call.
            unsafe { sys::llama_sampler_apply(grammar, &mut cur) };
            if data.logit == f32::NEG_INFINITY {
                return Err(Error::GrammarIncomplete(token.id()));
            }
        }
        Ok(())
    }

    /// Resets history and RNG-independent state, and re-enables Rust samplers
    /// that panicked (a panic in their `reset` disables them again, and the next
    /// `sample` reports it).
    pub fn reset(&mut self) {
        let chain = self.ptr.as_ptr();
        let mut e = ErrBuf::new();
        // SAFETY: valid chain. A panic in a Rust sampler's reset disables it again, and
        // the next `sample` reports that, so the error itself is dropped here; so is a C++
        // exception the shim caught (a grammar that could not be rebuilt keeps its state).
        let rc = self.call(|| unsafe { sys::llama_sys_sampler_reset(chain, e.ptr(), e.len()) });
        // A grammar rebuilt from its text has its state back (one that failed to rebuild
        // keeps the old one, so a failed grammar stays failed).
        if !matches!(rc, Ok(rc) if rc != 0) {
            self.grammar_failed = false;
        }
    }

    /// The seed actually in use by the chain's last seeded sampler (dist,
    /// mirostat; a random seed once resolved), or `None` if it has none.
    pub fn seed(&self) -> Option<u32> {
        // SAFETY: valid chain; only reads sampler state.
        let seed = unsafe { sys::llama_sampler_get_seed(self.ptr.as_ptr()) };
        (seed != sys::LLAMA_DEFAULT_SEED).then_some(seed)
    }

    /// A copy of the chain in its current state (history, RNG). Fails if a Rust
    /// sampler refuses ([`CustomSampler::clone_sampler`] returns `None`) or is disabled.
    pub fn try_clone(&self) -> Result<SamplerChain<'v>> {
        let mut e = ErrBuf::new();
        let chain = self.ptr.as_ptr();
        let (p, refused) = custom_sampler::isolated(|| {
            // SAFETY: valid chain; the shim catches C++ exceptions; Rust samplers never give
            // C a NULL clone (a refused one is a disabled stand-in, reported below).
            unsafe { sys::llama_sys_sampler_clone(chain, e.ptr(), e.len()) }
        });
        let ptr = NonNull::new(p).ok_or_else(|| e.cpp("llama_sampler_clone"))?;
        // Owned from here: returning the error frees the copy.
        let copy = SamplerChain {
            ptr,
            n_vocab: self.n_vocab,
            n_custom: self.n_custom,
            grammars: self.grammars.clone(),
            grammar_failed: self.grammar_failed,
            vocab: self.vocab,
            _vocab: PhantomData,
        };
        match refused {
            Some(err) => Err(err),
            None => Ok(copy),
        }
    }
}

fn ctx_ptr(ctx: &mut Context<'_>) -> *mut sys::llama_context {
    ctx.raw_ptr()
}

fn join(log: String, exception: String) -> String {
    match (log.is_empty(), exception.is_empty()) {
        (_, true) => log,
        (true, false) => exception,
        (false, false) => format!("{log}\n{exception}"),
    }
}
