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

use llamacpp_sys as sys;

use crate::backend;
use crate::context::Context;
use crate::custom_sampler::{self, CustomSampler};
use crate::error::{Error, Result, c_string};
use crate::raw::sampler::{RawChain, RawSampler};
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
    raw: RawChain<'v>,
    n_vocab: i32,
    /// Rust samplers in the chain: when non-zero, calls check for their errors.
    n_custom: usize,
    /// Where the chain's grammar samplers sit in it.
    grammars: Vec<i32>,
    /// Tells end-of-generation tokens, which a grammar must be checked for before accepting.
    vocab: Vocab<'v>,
    _vocab: PhantomData<Vocab<'v>>,
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
    /// Samplers not yet in a chain (each freed on drop).
    samplers: Vec<RawSampler<'v>>,
    selects: bool,
    n_custom: usize,
    /// Indices in `samplers` of the grammar samplers.
    grammars: Vec<i32>,
    error: Option<Error>,
}

impl<'v> SamplerBuilder<'v> {
    fn push(
        mut self,
        p: Option<RawSampler<'v>>,
        selects: bool,
        what: &'static str,
        log: String,
    ) -> Self {
        match p {
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

    fn filter(self, p: Option<RawSampler<'v>>, what: &'static str) -> Self {
        self.push(p, false, what, String::new())
    }

    /// Always the most likely token.
    pub fn greedy(self) -> Self {
        let p = RawSampler::greedy();
        self.push(p, true, "greedy", String::new())
    }

    /// Samples from the distribution with a seeded RNG.
    pub fn dist(self, seed: u32) -> Self {
        let p = RawSampler::dist(seed);
        self.push(p, true, "dist", String::new())
    }

    /// Keeps the `k` most likely tokens.
    pub fn top_k(self, k: i32) -> Self {
        self.filter(RawSampler::top_k(k), "top_k")
    }

    /// Nucleus sampling.
    pub fn top_p(self, p: f32, min_keep: usize) -> Self {
        self.filter(RawSampler::top_p(p, min_keep), "top_p")
    }

    /// Drops tokens below `p` times the top probability.
    pub fn min_p(self, p: f32, min_keep: usize) -> Self {
        self.filter(RawSampler::min_p(p, min_keep), "min_p")
    }

    /// Locally typical sampling.
    pub fn typical(self, p: f32, min_keep: usize) -> Self {
        self.filter(RawSampler::typical(p, min_keep), "typical")
    }

    /// Temperature.
    pub fn temp(self, t: f32) -> Self {
        self.filter(RawSampler::temp(t), "temp")
    }

    /// Dynamic temperature.
    pub fn temp_ext(self, t: f32, delta: f32, exponent: f32) -> Self {
        self.filter(RawSampler::temp_ext(t, delta, exponent), "temp_ext")
    }

    /// Exclude-top-choices sampling.
    pub fn xtc(self, p: f32, t: f32, min_keep: usize, seed: u32) -> Self {
        self.filter(RawSampler::xtc(p, t, min_keep, seed), "xtc")
    }

    /// Top-n-sigma.
    pub fn top_n_sigma(self, n: f32) -> Self {
        self.filter(RawSampler::top_n_sigma(n), "top_n_sigma")
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
        let p = RawSampler::adaptive_p(target, decay, seed);
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
        let p = RawSampler::infill(self.vocab);
        self.filter(p, "infill")
    }

    /// A sampler written in Rust (see [`CustomSampler`] for how panics are
    /// handled). It selects, and may end the chain, if its
    /// [`selects`](CustomSampler::selects) says so.
    pub fn custom(mut self, sampler: impl CustomSampler + 'static) -> Self {
        let name = custom_sampler::c_name(sampler.name());
        let selects = sampler.selects();
        let p = custom_sampler::new_raw(Box::new(sampler), name, selects);
        if p.is_some() {
            self.n_custom += 1;
        }
        self.push(p, selects, "custom sampler", String::new())
    }

    /// Mirostat v1 (selects).
    pub fn mirostat(self, seed: u32, tau: f32, eta: f32, m: i32) -> Self {
        let n_vocab = self.vocab.n_tokens();
        let p = RawSampler::mirostat(n_vocab, seed, tau, eta, m);
        self.push(p, true, "mirostat", String::new())
    }

    /// Mirostat v2 (selects).
    pub fn mirostat_v2(self, seed: u32, tau: f32, eta: f32) -> Self {
        let p = RawSampler::mirostat_v2(seed, tau, eta);
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
        let (p, log) = split(RawSampler::penalties(
            n_vocab, last_n, repeat, freq, present,
        ));
        self.push(p, false, "penalties", log)
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
        let (p, log) = split(RawSampler::dry(
            self.vocab,
            multiplier,
            base,
            allowed_length,
            last_n,
            &owned,
        ));
        self.push(p, false, "dry", log)
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
        self.filter(RawSampler::logit_bias(n_vocab, &raw), "logit_bias")
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
        let vocab = self.vocab;
        let (p, log) = match lazy {
            None => {
                let ((p, e), log) = backend::capture_log(|| RawSampler::grammar(vocab, &g, &r));
                (p, join(log, e))
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
                let ids: Vec<i32> = tokens.iter().map(|t| t.id()).collect();
                let ((p, e), log) = backend::capture_log(|| {
                    RawSampler::grammar_lazy_patterns(vocab, &g, &r, &pats, &ids)
                });
                (p, join(log, e))
            }
        };
        if p.is_none() {
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
        let n_vocab = self.vocab.n_tokens();
        let mut chain = RawChain::new(n_vocab).ok_or(Error::Null {
            what: "llama_sampler_chain_init",
            log: String::new(),
        })?;
        for s in self.samplers.drain(..) {
            chain.add(s);
        }
        Ok(SamplerChain {
            raw: chain,
            n_vocab,
            n_custom: self.n_custom,
            grammars: std::mem::take(&mut self.grammars),
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

    /// Samples a token from the logits of batch index `idx` of the last decode,
    /// and records it in the chain's history (penalties, grammar).
    ///
    /// A panic in a Rust sampler is [`Error::CustomSampler`] (see [`CustomSampler`]).
    pub fn sample(&mut self, ctx: &mut Context<'_>, idx: i32) -> Result<Token> {
        self.check_grammar()?;
        // The raw chain refuses an `idx` without logits and a context of another vocabulary.
        let raw = &mut self.raw;
        let id = call(self.n_custom, || raw.sample(ctx, idx))??
            .map_err(|e| self.thrown(e, "llama_sampler_sample"))?;
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
        let raw = &mut self.raw;
        call(self.n_custom, || raw.accept(token.id()))??
            .map_err(|e| self.thrown(e, "llama_sampler_accept"))
    }

    /// The error for a C++ exception a chain call (`what`) threw: a grammar's rejection
    /// when the chain has one (its state is then gone, see [`Self::grammar_failed`]).
    fn thrown(&self, message: String, what: &'static str) -> Error {
        if self.grammars.is_empty() {
            Error::Cpp { what, message }
        } else {
            Error::GrammarRejected(message)
        }
    }

    /// Whether a grammar rejected a token (llama.cpp threw while accepting it, or while
    /// sampling): its state is gone, and llama.cpp asserts on the next use, so the chain
    /// refuses every call but `reset` until then.
    fn grammar_failed(&self) -> bool {
        !self.grammars.is_empty() && self.raw.threw()
    }

    /// `Err` after a grammar rejected a token: llama.cpp's grammar then has no state left,
    /// and asserts (aborting the process) when it is next applied or fed.
    fn check_grammar(&self) -> Result<()> {
        if self.grammar_failed() {
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
            // `i` is the index the grammar was added at; the state is intact (checked by
            // `check_grammar`) and the token in range (checked by `accept`), so `None`
            // only means no such member.
            if self.raw.apply_member(i, token.id()) == Some(f32::NEG_INFINITY) {
                return Err(Error::GrammarIncomplete(token.id()));
            }
        }
        Ok(())
    }

    /// Resets history and RNG-independent state, and re-enables Rust samplers
    /// that panicked (a panic in their `reset` disables them again, and the next
    /// `sample` reports it).
    pub fn reset(&mut self) {
        // A panic in a Rust sampler's reset disables it again, and the next `sample`
        // reports that, so the error itself is dropped here; so is a C++ exception the shim
        // caught (a grammar that could not be rebuilt keeps its old state, so a failed
        // grammar stays failed: the raw chain clears its flag only on success).
        let raw = &mut self.raw;
        let _ = call(self.n_custom, || raw.reset());
    }

    /// The seed actually in use by the chain's last seeded sampler (dist,
    /// mirostat; a random seed once resolved), or `None` if it has none.
    pub fn seed(&self) -> Option<u32> {
        let seed = self.raw.seed();
        (seed != sys::LLAMA_DEFAULT_SEED).then_some(seed)
    }

    /// A copy of the chain in its current state (history, RNG). Fails if a Rust
    /// sampler refuses ([`CustomSampler::clone_sampler`] returns `None`) or is disabled.
    pub fn try_clone(&self) -> Result<SamplerChain<'v>> {
        // Rust samplers never give C a NULL clone (a refused one is a disabled stand-in,
        // reported below).
        let (raw, refused) = custom_sampler::isolated(|| self.raw.try_clone());
        let raw = raw.map_err(|message| Error::Cpp {
            what: "llama_sampler_clone",
            message,
        })?;
        // Owned from here: returning the error frees the copy.
        let copy = SamplerChain {
            raw,
            n_vocab: self.n_vocab,
            n_custom: self.n_custom,
            grammars: self.grammars.clone(),
            vocab: self.vocab,
            _vocab: PhantomData,
        };
        match refused {
            Some(err) => Err(err),
            None => Ok(copy),
        }
    }
}

/// Runs a call into a chain with `n_custom` Rust samplers; `Err` if one of them recorded
/// an error meanwhile (chains without any skip the bookkeeping).
fn call<R>(n_custom: usize, f: impl FnOnce() -> R) -> Result<R> {
    if n_custom == 0 {
        return Ok(f());
    }
    match custom_sampler::isolated(f) {
        (r, None) => Ok(r),
        (_, Some(e)) => Err(e),
    }
}

/// A constructor's outcome as `push` takes it: the sampler, or the exception's message.
fn split<'v>(r: std::result::Result<RawSampler<'v>, String>) -> (Option<RawSampler<'v>>, String) {
    match r {
        Ok(s) => (Some(s), String::new()),
        Err(log) => (None, log),
    }
}

fn join(log: String, exception: String) -> String {
    match (log.is_empty(), exception.is_empty()) {
        (_, true) => log,
        (true, false) => exception,
        (false, false) => format!("{log}\n{exception}"),
    }
}
