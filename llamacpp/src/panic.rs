//! One panic policy for every callback llama.cpp calls into Rust (model-load progress,
//! graph observers and timers, the MTP capture, custom samplers, logging).
//!
//! A panic must never unwind into C: that aborts the process. Each `extern "C"` callback
//! runs its Rust code through [`catch`], which stops the panic, drops its payload (a payload
//! whose own `Drop` panics is leaked instead) and keeps its message in a thread-local slot.
//! The safe call that went into C ([`guarded`]) then returns
//! [`Error::CallbackPanicked`] with that message, once llama.cpp has returned: llama.cpp
//! calls these callbacks synchronously on the calling thread.
//!
//! Logging and the abort hook use [`contain`]: the panic is stopped and dropped, since
//! those run on whichever thread logs. Custom samplers follow the same rule as the others,
//! with one addition (a panic also poisons the
//! sampler), in `custom_sampler.rs`, which uses [`payload_text`] and [`drop_quietly`] from
//! here. With `panic = "abort"`, a panic aborts, as everywhere in Rust.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result};

thread_local! {
    /// The first panic caught on this thread since the slot was last emptied.
    static CAUGHT: RefCell<Option<(&'static str, String)>> = const { RefCell::new(None) };
}

/// Runs `f`, the Rust side of the C callback `callback`: `None` if it panicked, with the
/// panic's message kept for [`guarded`] (the first one, when several callbacks panic during
/// one call).
pub(crate) fn catch<R>(callback: &'static str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            let message = payload_text(payload.as_ref());
            drop_quietly(payload);
            // `try_with`: during thread teardown the slot may be gone; the panic is then
            // still stopped, only its message is lost.
            let _ = CAUGHT.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    c.get_or_insert((callback, message));
                }
            });
            None
        }
    }
}

/// Runs `f`, the Rust side of a logging or abort hook: `None` if it panicked. The panic is
/// stopped and dropped, not reported: logging is a side channel that llama.cpp and ggml
/// call from whichever thread logs, so a call to blame cannot be told.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            drop_quietly(payload);
            None
        }
    }
}

/// Runs `f`, a call into C that may call back into Rust: `Err(Error::CallbackPanicked)` if
/// a callback panicked during it, else what `f` returned.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> Result<R> {
    take(); // a panic before this call (in a log callback, say) is not this call's
    let r = f();
    match take() {
        Some((callback, message)) => Err(Error::CallbackPanicked { callback, message }),
        None => Ok(r),
    }
}

/// Empties this thread's slot.
fn take() -> Option<(&'static str, String)> {
    CAUGHT
        .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
        .ok()
        .flatten()
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Drops a panic payload where its `Drop` may panic too: a payload whose drop panics yields
/// a new payload, which may do the same; after a few rounds the last one is leaked.
pub(crate) fn drop_quietly(mut payload: Box<dyn Any + Send>) {
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_the_guarded_calls_error() {
        let r = guarded(|| catch("progress", || panic!("boom {}", 1)).unwrap_or(false));
        match r {
            Err(Error::CallbackPanicked { callback, message }) => {
                assert_eq!((callback, message.as_str()), ("progress", "boom 1"));
            }
            other => panic!("{other:?}"),
        }
        // The slot is empty again; a call without a panic is Ok.
        assert_eq!(guarded(|| catch("graph", || 7)).unwrap(), Some(7));
    }

    #[test]
    fn the_first_panic_wins_and_an_earlier_one_is_not_reported() {
        assert!(catch("graph", || -> () { panic!("before the call") }).is_none());
        assert!(contain(|| -> () { panic!("a logger") }).is_none());
        let r = guarded(|| {
            let _ = catch("graph", || -> () { panic!("first") });
            let _ = catch("graph", || -> () { panic!("second") });
        });
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("graph") && e.contains("first") && !e.contains("before"),
            "{e}"
        );
    }

    #[test]
    fn catch_survives_a_payload_whose_drop_panics() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let r = guarded(|| catch("graph", || std::panic::panic_any(Bomb)));
        match r {
            Err(Error::CallbackPanicked { message, .. }) => {
                assert_eq!(message, "non-string panic payload");
            }
            other => panic!("{other:?}"),
        }
    }
}
