//! `Model::adapters_lock` as contexts take it: read while a graph is built and run, written
//! while the adapter set changes, and not taken again by a callback already inside it.

use crate::error::{Error, Result};
use crate::model::Model;

thread_local! {
    /// The models whose adapter lock this thread holds (by address), innermost last: the
    /// user's callbacks (graph observers, log subscribers) run while it is held, and may
    /// call back into the crate on the same model.
    static HELD_ADAPTER_LOCKS: std::cell::RefCell<Vec<usize>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A held `Model::adapters_lock`, for reading or writing, or nothing where this thread
/// already held it (a callback running inside a decode on the same model).
pub(crate) struct AdaptersGuard<'a> {
    _read: Option<std::sync::RwLockReadGuard<'a, ()>>,
    _write: Option<std::sync::RwLockWriteGuard<'a, ()>>,
    /// The model's key, when this guard recorded it in `HELD_ADAPTER_LOCKS`.
    recorded: Option<usize>,
}

impl Drop for AdaptersGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.recorded {
            let _ = HELD_ADAPTER_LOCKS.try_with(|h| {
                let mut held = h.borrow_mut();
                if let Some(i) = held.iter().rposition(|&k| k == key) {
                    held.remove(i);
                }
            });
        }
    }
}

/// Whether this thread holds `model`'s adapter lock (see [`adapters_read`]).
pub(crate) fn holds_adapters_lock(model: &Model) -> bool {
    let key = model as *const Model as usize;
    HELD_ADAPTER_LOCKS
        .try_with(|h| h.borrow().contains(&key))
        .unwrap_or(false)
}

fn record(model: &Model) -> Option<usize> {
    let key = model as *const Model as usize;
    HELD_ADAPTER_LOCKS
        .try_with(|h| h.borrow_mut().push(key))
        .ok()
        .map(|()| key)
}

/// Takes `model`'s adapter lock for reading, unless this thread holds it already: taking a
/// read lock twice on one thread deadlocks once another thread waits to write.
pub(crate) fn adapters_read(model: &Model) -> AdaptersGuard<'_> {
    if holds_adapters_lock(model) {
        return AdaptersGuard {
            _read: None,
            _write: None,
            recorded: None,
        };
    }
    let guard = model
        .adapters_lock
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    AdaptersGuard {
        _read: Some(guard),
        _write: None,
        recorded: record(model),
    }
}

/// Takes `model`'s adapter lock for writing; `Err` when this thread holds it already (from
/// a callback inside a decode or context creation on the same model), where waiting for it
/// would wait forever.
pub(crate) fn adapters_write(model: &Model) -> Result<AdaptersGuard<'_>> {
    if holds_adapters_lock(model) {
        return Err(Error::Unsupported(
            "changing the model's adapters, or creating a context that rewrites the model \
             (YaRN), from a callback running inside a decode or context creation on the \
             same model"
                .into(),
        ));
    }
    let guard = model
        .adapters_lock
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(AdaptersGuard {
        _read: None,
        _write: Some(guard),
        recorded: record(model),
    })
}
