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
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use llamacpp_sys as sys;

use crate::candidates::TokenDataArray;
use crate::error::Error;
use crate::panic::{drop_quietly, payload_text};
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

/// The state behind a custom `llama_sampler`'s `ctx` pointer.
struct Adapter {
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
}

/// A sampler's name as a C string (NUL bytes replaced).
pub(crate) fn c_name(name: &str) -> CString {
    CString::new(name.replace('\0', "?")).unwrap_or_default()
}

/// Wraps `inner` in a new `llama_sampler` (NULL only if llama.cpp fails to allocate).
pub(crate) fn new_raw(
    inner: Box<dyn CustomSampler>,
    name: CString,
    selects: bool,
    poisoned: Option<String>,
) -> *mut sys::llama_sampler {
    let adapter = Box::into_raw(Box::new(Adapter {
        name,
        inner,
        selects,
        poisoned,
    }));
    // llama.cpp only reads the interface table, so a shared static serves every sampler.
    let iface = (&raw const VTABLE).cast_mut();
    // SAFETY: the table's callbacks match `llama_sampler_i`; `adapter` is a live Box
    // that `free_cb` reclaims.
    let p = unsafe { sys::llama_sampler_init(iface, adapter.cast()) };
    if p.is_null() {
        // SAFETY: C did not take the adapter; it is still ours.
        drop(unsafe { Box::from_raw(adapter) });
    }
    p
}

static VTABLE: sys::llama_sampler_i = sys::llama_sampler_i {
    name: Some(name_cb),
    accept: Some(accept_cb),
    apply: Some(apply_cb),
    reset: Some(reset_cb),
    clone: Some(clone_cb),
    free: Some(free_cb),
    backend_init: None,
    backend_accept: None,
    backend_apply: None,
    backend_set_input: None,
    backend_reset: None,
    copy_state: None,
};

/// # Safety
/// `smpl` must be a live sampler made by [`new_raw`], not mutably borrowed for `'a`.
unsafe fn adapter<'a>(smpl: *const sys::llama_sampler) -> &'a Adapter {
    // SAFETY: per the contract, `ctx` is the Box'd adapter `new_raw` stored.
    unsafe { &*(*smpl).ctx.cast::<Adapter>() }
}

/// # Safety
/// As [`adapter`], and no other reference to it may exist for `'a`.
unsafe fn adapter_mut<'a>(smpl: *mut sys::llama_sampler) -> &'a mut Adapter {
    // SAFETY: per the contract.
    unsafe { &mut *(*smpl).ctx.cast::<Adapter>() }
}

unsafe extern "C" fn name_cb(smpl: *const sys::llama_sampler) -> *const c_char {
    // SAFETY: llama.cpp passes one of our live samplers.
    unsafe { adapter(smpl) }.name.as_ptr()
}

unsafe extern "C" fn apply_cb(
    smpl: *mut sys::llama_sampler,
    cur_p: *mut sys::llama_token_data_array,
) {
    // SAFETY: llama.cpp passes one of our live samplers; callbacks run on the thread
    // holding `&mut SamplerChain`, so nothing else touches the adapter meanwhile.
    let a = unsafe { adapter_mut(smpl) };
    // SAFETY: llama.cpp passes a valid candidate array for the duration of the call.
    let Some(raw) = (unsafe { cur_p.as_mut() }) else {
        return;
    };
    if raw.size == 0 || raw.data.is_null() {
        return;
    }
    if !a.check_poisoned() {
        a.guard("apply", |inner| {
            // SAFETY: `raw` has `size >= 1` entries built by llama.cpp from the vocabulary
            // (ids in range), exclusively ours until the callback returns.
            let mut view = unsafe { TokenDataArray::from_raw(raw) };
            inner.apply(&mut view);
        });
    }
    // Also when poisoned: a chain ending here must still get a valid selection.
    if a.selects && !(0..raw.size as i64).contains(&raw.selected) {
        if a.poisoned.is_none() {
            record(a.error("selects() is true but apply selected no candidate".into()));
        }
        raw.selected = 0;
    }
}

unsafe extern "C" fn accept_cb(smpl: *mut sys::llama_sampler, token: sys::llama_token) {
    // SAFETY: as in `apply_cb`.
    let a = unsafe { adapter_mut(smpl) };
    if a.check_poisoned() {
        return;
    }
    // The chain only accepts ids it sampled or checked against the vocabulary.
    a.guard("accept", |inner| inner.accept(Token::from_candidate(token)));
}

unsafe extern "C" fn reset_cb(smpl: *mut sys::llama_sampler) {
    // SAFETY: as in `apply_cb`.
    let a = unsafe { adapter_mut(smpl) };
    a.poisoned = None;
    a.guard("reset", |inner| inner.reset());
}

/// A stand-in behind a clone that was refused; it is poisoned, so never applied.
struct Refused;

impl CustomSampler for Refused {
    fn apply(&mut self, _candidates: &mut TokenDataArray<'_>) {}
}

unsafe extern "C" fn clone_cb(smpl: *const sys::llama_sampler) -> *mut sys::llama_sampler {
    // SAFETY: llama.cpp passes one of our live samplers; `&SamplerChain` excludes writers.
    let a = unsafe { adapter(smpl) };
    let cloned = match &a.poisoned {
        Some(m) => Err(format!("cannot clone: disabled by an earlier panic ({m})")),
        None => match catch_unwind(AssertUnwindSafe(|| a.inner.clone_sampler())) {
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
    // Never NULL to C (a chain would store it and crash later): a refused clone is a
    // poisoned stand-in, and the recorded error makes `try_clone` discard the copy.
    match cloned {
        Ok(inner) => new_raw(inner, a.name.clone(), a.selects, None),
        Err(m) => {
            record(a.error(m.clone()));
            new_raw(Box::new(Refused), a.name.clone(), a.selects, Some(m))
        }
    }
}

unsafe extern "C" fn free_cb(smpl: *mut sys::llama_sampler) {
    // SAFETY: llama.cpp passes one of our samplers, once, right before deleting it.
    let ctx = unsafe { (*smpl).ctx };
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is the Box `new_raw` leaked; nothing uses it after `free`.
    let adapter = unsafe { Box::from_raw(ctx.cast::<Adapter>()) };
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(adapter))) {
        drop_quietly(payload);
    }
}
