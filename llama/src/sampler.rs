//! Sampler chains: a builder over llama.cpp's samplers that always ends in a
//! selecting sampler, with grammar errors as `Err`.

use std::ffi::CString;
use std::ptr::NonNull;

use llama_sys as sys;

use crate::backend;
use crate::context::Context;
use crate::error::{Error, Result, c_string};
use crate::vocab::{Token, Vocab};

/// An owned sampler chain. Build it with [`SamplerChain::builder`].
pub struct SamplerChain {
    ptr: NonNull<sys::llama_sampler>,
    n_vocab: i32,
}

// SAFETY: a sampler chain is plain heap state used by one thread at a time (`&mut self`).
unsafe impl Send for SamplerChain {}

impl Drop for SamplerChain {
    fn drop(&mut self) {
        // SAFETY: we own the chain (which owns its samplers).
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for SamplerChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplerChain").finish_non_exhaustive()
    }
}

/// Builds a [`SamplerChain`]; [`build`](Self::build) fails unless the last
/// sampler selects a token (greedy, dist, mirostat).
///
/// ```no_run
/// # fn demo(model: &llama::Model) -> llama::Result<()> {
/// let chain = llama::SamplerChain::builder(model.vocab()).top_k(40).temp(0.8).dist(42).build()?;
/// # Ok(()) }
/// ```
pub struct SamplerBuilder<'v> {
    vocab: Vocab<'v>,
    samplers: Vec<NonNull<sys::llama_sampler>>,
    selects: bool,
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
    fn push(mut self, p: *mut sys::llama_sampler, selects: bool, what: &str, log: String) -> Self {
        match NonNull::new(p) {
            Some(p) => {
                self.samplers.push(p);
                self.selects = selects;
            }
            None if self.error.is_none() => {
                let detail = if log.is_empty() {
                    String::new()
                } else {
                    format!(": {log}")
                };
                self.error = Some(Error::Sampler(format!(
                    "{what} could not be created{detail}"
                )));
            }
            None => {}
        }
        self
    }

    fn filter(self, p: *mut sys::llama_sampler, what: &str) -> Self {
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
            s.error.get_or_insert(Error::Sampler(
                "penalties: repeat must be > 0, freq and present finite".into(),
            ));
            return s;
        }
        let n_vocab = self.vocab.n_tokens();
        // SAFETY: arguments checked as the header requires.
        self.filter(
            unsafe { sys::llama_sampler_init_penalties(n_vocab, last_n, repeat, freq, present) },
            "penalties",
        )
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
        let Ok(owned) = owned else {
            let mut s = self;
            s.error
                .get_or_insert(Error::Sampler("dry: sequence breaker contains NUL".into()));
            return s;
        };
        let mut ptrs: Vec<*const std::ffi::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let vocab = self.vocab.as_ptr();
        // SAFETY: vocab valid; the breaker strings live until the call returns (copied inside).
        let p = unsafe {
            sys::llama_sampler_init_dry(
                vocab,
                multiplier,
                base,
                allowed_length,
                last_n,
                ptrs.as_mut_ptr(),
                ptrs.len(),
            )
        };
        self.filter(p, "dry")
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
        let (Ok(g), Ok(r)) = (c_string(gbnf), c_string(root)) else {
            let mut s = self;
            s.error
                .get_or_insert(Error::Sampler("grammar contains a NUL byte".into()));
            return s;
        };
        let vocab = self.vocab.as_ptr();
        let (p, log) = match lazy {
            None => {
                // SAFETY: vocab valid, strings NUL-terminated; llama.cpp catches parse errors and returns NULL.
                backend::capture_log(|| unsafe {
                    sys::llama_sampler_init_grammar(vocab, g.as_ptr(), r.as_ptr())
                })
            }
            Some((patterns, tokens)) => {
                let pats: Result<Vec<CString>> = patterns.iter().map(|p| c_string(p)).collect();
                let Ok(pats) = pats else {
                    let mut s = self;
                    s.error.get_or_insert(Error::Sampler(
                        "trigger pattern contains a NUL byte".into(),
                    ));
                    return s;
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
        self.push(p, false, "grammar", log)
    }

    /// Finishes the chain.
    pub fn build(mut self) -> Result<SamplerChain> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.selects {
            return Err(Error::Sampler(
                "the chain must end in a selecting sampler (greedy, dist, mirostat)".into(),
            ));
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
        })
    }
}

impl SamplerChain {
    /// Starts a chain for models with this vocabulary.
    pub fn builder(vocab: Vocab<'_>) -> SamplerBuilder<'_> {
        backend::init();
        SamplerBuilder {
            vocab,
            samplers: Vec::new(),
            selects: false,
            error: None,
        }
    }

    /// Samples a token from the logits of batch index `idx` of the last decode,
    /// and records it in the chain's history (penalties, grammar).
    pub fn sample(&mut self, ctx: &mut Context<'_>, idx: i32) -> Result<Token> {
        ctx.logits(idx)?;
        if ctx.model().vocab().n_tokens() != self.n_vocab {
            return Err(Error::Sampler(
                "chain was built for another vocabulary".into(),
            ));
        }
        let (mut id, mut e) = (0, ErrBuf::new());
        // SAFETY: `idx` is a checked output of the last decode; chain and context valid; the
        // shim catches the exception a grammar throws when no token can continue it.
        let rc = unsafe {
            sys::llama_sys_sampler_sample(
                self.ptr.as_ptr(),
                ctx_ptr(ctx),
                idx,
                &mut id,
                e.ptr(),
                e.len(),
            )
        };
        if rc != 0 {
            return Err(Error::Sampler(e.text()));
        }
        ctx.model().vocab().token(id).map_err(|_| {
            Error::Sampler(format!(
                "sampled invalid token {id} (grammar rejected every token?)"
            ))
        })
    }

    /// Records a token chosen elsewhere (prompt tokens, for penalties and grammar).
    pub fn accept(&mut self, token: Token) -> Result<()> {
        if !(0..self.n_vocab).contains(&token.id()) {
            return Err(Error::InvalidToken {
                id: token.id(),
                n_vocab: self.n_vocab,
            });
        }
        let mut e = ErrBuf::new();
        // SAFETY: valid chain, token in range; the shim catches a grammar's rejection.
        let rc = unsafe {
            sys::llama_sys_sampler_accept(self.ptr.as_ptr(), token.id(), e.ptr(), e.len())
        };
        if rc != 0 {
            return Err(Error::Sampler(e.text()));
        }
        Ok(())
    }

    /// Resets history and RNG-independent state.
    pub fn reset(&mut self) {
        // SAFETY: valid chain.
        unsafe { sys::llama_sampler_reset(self.ptr.as_ptr()) }
    }
}

fn ctx_ptr(ctx: &mut Context<'_>) -> *mut sys::llama_context {
    ctx.raw_ptr()
}

/// A buffer the C++ shim writes an exception message into.
struct ErrBuf([u8; 256]);

impl ErrBuf {
    fn new() -> Self {
        Self([0; 256])
    }

    fn ptr(&mut self) -> *mut std::ffi::c_char {
        self.0.as_mut_ptr().cast()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn text(&self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

fn join(log: String, exception: String) -> String {
    match (log.is_empty(), exception.is_empty()) {
        (_, true) => log,
        (true, false) => exception,
        (false, false) => format!("{log}\n{exception}"),
    }
}
