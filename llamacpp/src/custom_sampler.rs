//! Samplers written in Rust: the [`CustomSampler`] trait, wrapped in a
//! `llama_sampler` whose C callbacks never let a panic reach C.
//!
//! # Panics
//!
//! Every callback runs the user's code under `catch_unwind`. A panic:
//!
//! 1. is recorded, and the [`SamplerChain`](crate::SamplerChain) call during which it
//!    happened (`sample`, `accept`) returns [`Error::CustomSampler`] once llama.cpp has
//!    returned; the rest of the chain ran normally meanwhile (a selecting sampler
//!    after it still picks a token, so the chain's history has advanced);
//! 2. **poisons** the sampler: its callbacks no longer run user code and every
//!    later `sample`/`accept` fails with the same error, until
//!    [`SamplerChain::reset`](crate::SamplerChain::reset) calls [`CustomSampler::reset`],
//!    which must bring the sampler back to a consistent state.
//!
//! A selecting sampler ([`CustomSampler::selects`]) that leaves no valid
//! selection is an error too: index 0 is selected in its place, because
//! `llama_sampler_sample` aborts the process on an invalid selection.
//!
//! The error travels through a thread-local slot: llama.cpp runs these
//! callbacks synchronously on the thread calling into the chain (the safe crate
//! never hands a chain to a context's backend sampling, which could run it elsewhere).
//! With `panic = "abort"` a panic aborts, as everywhere in Rust.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::candidates::TokenDataArray;
use crate::error::Error;
use crate::panic::{drop_quietly, payload_text};
use crate::raw::candidates::RawCandidates;
use crate::raw::sampler::RawSampler;
use crate::vocab::Token;

/// A sampler written in Rust, added to a chain with
/// [`SamplerBuilder::custom`](crate::SamplerBuilder::custom).
///
/// ```no_run
/// use llamacpp::{CustomSampler, SamplerChain, Token, TokenDataArray};
///
/// /// Never lets `token` be chosen.
/// struct Ban(Token);
///
/// impl CustomSampler for Ban {
///     fn name(&self) -> &str {
///         "ban"
///     }
///     fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
///         for c in candidates.as_mut_slice() {
///             if c.token() == self.0 {
///                 c.set_logit(f32::NEG_INFINITY);
///             }
///         }
///     }
/// }
///
/// # fn demo(model: &llamacpp::Model) -> llamacpp::Result<()> {
/// let banned = model.vocab().token(42)?;
/// let chain = SamplerChain::builder(model.vocab()).custom(Ban(banned)).greedy().build()?;
/// # Ok(()) }
/// ```
pub trait CustomSampler: Send {
    /// A short name for logs and errors.
    fn name(&self) -> &str {
        "custom"
    }

    /// Edits the candidates (re-weights, reorders, truncates, or selects one).
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>);

    /// Records a token the chain chose or was told about (prompt tokens).
    fn accept(&mut self, _token: Token) {}

    /// Forgets the history, back to the state after construction.
    fn reset(&mut self) {}

    /// Whether [`apply`](Self::apply) always selects a candidate
    /// ([`TokenDataArray::select`]), so that the sampler may end a chain.
    /// Read once, when the sampler is added.
    fn selects(&self) -> bool {
        false
    }

    /// A copy in the same state, for [`SamplerChain::try_clone`](crate::SamplerChain::try_clone);
    /// `None` (the default) refuses, and `try_clone` fails cleanly.
    fn clone_sampler(&self) -> Option<Box<dyn CustomSampler>> {
        None
    }
}

thread_local! {
    /// The first error a custom sampler callback recorded during the current chain call.
    static PENDING: RefCell<Option<Error>> = const { RefCell::new(None) };
}

fn record(e: Error) {
    let _ = PENDING.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.get_or_insert(e);
        }
    });
}

fn take_pending() -> Option<Error> {
    PENDING
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
        .ok()
        .flatten()
}

/// Runs `f` (a call into a chain) and returns the first error a Rust sampler
/// recorded during it. An error pending from an enclosing call (a sampler that
/// samples another chain inside `apply`) is kept for that call.
pub(crate) fn isolated<R>(f: impl FnOnce() -> R) -> (R, Option<Error>) {
    let outer = take_pending();
    let r = f();
    let mine = take_pending();
    if let Some(e) = outer {
        record(e);
    }
    (r, mine)
}

/// The state behind a custom `llama_sampler`'s `ctx` pointer; `raw::custom_sampler`'s C
/// callbacks call its methods.
pub(crate) struct Adapter {
    /// NUL-free copy of the name, returned to C by `name`.
    name: CString,
    inner: Box<dyn CustomSampler>,
    selects: bool,
    /// Set by a panic; cleared by `reset`.
    poisoned: Option<String>,
}

impl Adapter {
    fn error(&self, message: String) -> Error {
        Error::CustomSampler {
            name: self.name.to_string_lossy().into_owned(),
            message,
        }
    }

    /// Records the poison as an error; true if the sampler is poisoned.
    fn check_poisoned(&self) -> bool {
        match &self.poisoned {
            Some(m) => {
                record(self.error(format!(
                    "disabled by an earlier panic ({m}); reset the chain"
                )));
                true
            }
            None => false,
        }
    }

    /// Runs user code; a panic is recorded and poisons the sampler.
    fn guard(&mut self, what: &str, f: impl FnOnce(&mut dyn CustomSampler)) {
        let inner = &mut *self.inner;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(inner))) {
            let message = format!("panicked in {what}: {}", payload_text(payload.as_ref()));
            drop_quietly(payload);
            record(self.error(message.clone()));
            self.poisoned = Some(message);
        }
    }

    /// The name C reads.
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// The `apply` callback, on a non-empty candidate list.
    pub(crate) fn apply(&mut self, mut cands: RawCandidates<'_>) {
        if !self.check_poisoned() {
            self.guard("apply", |inner| {
                let mut view = TokenDataArray::new(cands.reborrow());
                inner.apply(&mut view);
            });
        }
        // Also when poisoned: a chain ending here must still get a valid selection.
        if self.selects && !(0..cands.len() as i64).contains(&cands.selected()) {
            if self.poisoned.is_none() {
                record(self.error("selects() is true but apply selected no candidate".into()));
            }
            cands.select(0);
        }
    }

    /// The `accept` callback.
    pub(crate) fn accept(&mut self, token: Token) {
        if self.check_poisoned() {
            return;
        }
        self.guard("accept", |inner| inner.accept(token));
    }

    /// The `reset` callback: re-enables a poisoned sampler.
    pub(crate) fn reset(&mut self) {
        self.poisoned = None;
        self.guard("reset", |inner| inner.reset());
    }

    /// The `clone` callback's state: never refused to C (a chain would store a NULL and
    /// crash later), so a refused clone is a poisoned stand-in, and the recorded error
    /// makes `try_clone` discard the copy.
    pub(crate) fn clone_adapter(&self) -> Box<Adapter> {
        let cloned = match &self.poisoned {
            Some(m) => Err(format!("cannot clone: disabled by an earlier panic ({m})")),
            None => match catch_unwind(AssertUnwindSafe(|| self.inner.clone_sampler())) {
                Ok(Some(inner)) => Ok(inner),
                Ok(None) => Err("does not support cloning (clone_sampler returned None)".into()),
                Err(payload) => {
                    let m = format!(
                        "panicked in clone_sampler: {}",
                        payload_text(payload.as_ref())
                    );
                    drop_quietly(payload);
                    Err(m)
                }
            },
        };
        match cloned {
            Ok(inner) => adapter(inner, self.name.clone(), self.selects, None),
            Err(m) => {
                record(self.error(m.clone()));
                adapter(Box::new(Refused), self.name.clone(), self.selects, Some(m))
            }
        }
    }
}

/// A sampler's name as a C string (NUL bytes replaced).
pub(crate) fn c_name(name: &str) -> CString {
    CString::new(name.replace('\0', "?")).unwrap_or_default()
}

fn adapter(
    inner: Box<dyn CustomSampler>,
    name: CString,
    selects: bool,
    poisoned: Option<String>,
) -> Box<Adapter> {
    Box::new(Adapter {
        name,
        inner,
        selects,
        poisoned,
    })
}

/// Wraps `inner` in a new `llama_sampler` (`None` only if llama.cpp fails to allocate).
pub(crate) fn new_raw(
    inner: Box<dyn CustomSampler>,
    name: CString,
    selects: bool,
) -> Option<RawSampler<'static>> {
    RawSampler::custom(adapter(inner, name, selects, None))
}

/// A stand-in behind a clone that was refused; it is poisoned, so never applied.
struct Refused;

impl CustomSampler for Refused {
    fn apply(&mut self, _candidates: &mut TokenDataArray<'_>) {}
}
