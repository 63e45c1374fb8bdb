//! The candidate list llama.cpp hands a sampler's `apply`: a `llama_token_data_array`
//! borrowed for the one call, whose entries are reachable only as checked slices.

use llamacpp_sys as sys;

use crate::candidates::TokenData;

/// A borrowed `llama_token_data_array` whose `data` points at `size` live entries. The
/// size only ever shrinks, so the slices below never reach past what llama.cpp gave.
pub(crate) struct RawCandidates<'a> {
    raw: &'a mut sys::llama_token_data_array,
}

impl<'a> RawCandidates<'a> {
    /// # Safety
    /// `raw.data` must point to `raw.size` initialised entries (or be NULL with `size` 0),
    /// valid and not aliased for `'a`, whose ids are in the vocabulary of the chain being
    /// sampled ([`TokenData::token`] hands them out as checked tokens).
    pub(crate) unsafe fn new(raw: &'a mut sys::llama_token_data_array) -> Self {
        Self { raw }
    }

    /// A view over `data`, for unit tests: the array is pointed at it, so the contract of
    /// [`new`](Self::new) holds by construction (except that the ids are whatever the
    /// test wrote, which a test never hands to C).
    #[cfg(test)]
    pub(crate) fn over(
        data: &'a mut [sys::llama_token_data],
        raw: &'a mut sys::llama_token_data_array,
    ) -> Self {
        raw.data = data.as_mut_ptr();
        raw.size = data.len();
        raw.selected = -1;
        raw.sorted = false;
        Self { raw }
    }

    /// The same view for a shorter borrow.
    pub(crate) fn reborrow(&mut self) -> RawCandidates<'_> {
        RawCandidates { raw: self.raw }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.raw.size
    }

    /// The entries.
    pub(crate) fn entries(&self) -> &[TokenData] {
        if self.raw.data.is_null() || self.raw.size == 0 {
            return &[];
        }
        // SAFETY: `new`'s contract: `size` initialised entries, valid for 'a (`size` only
        // shrinks, in `shrink`); `TokenData` is `repr(transparent)` over `llama_token_data`.
        unsafe { std::slice::from_raw_parts(self.raw.data.cast::<TokenData>(), self.raw.size) }
    }

    /// The entries, to edit in place.
    pub(crate) fn entries_mut(&mut self) -> &mut [TokenData] {
        if self.raw.data.is_null() || self.raw.size == 0 {
            return &mut [];
        }
        // SAFETY: as in `entries`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.raw.data.cast::<TokenData>(), self.raw.size) }
    }

    /// Keeps the first `len` entries (never grows the list).
    pub(crate) fn shrink(&mut self, len: usize) {
        self.raw.size = self.raw.size.min(len);
    }

    /// The raw `selected` field (-1 when nothing is selected; C writes anything).
    pub(crate) fn selected(&self) -> i64 {
        self.raw.selected
    }

    /// Selects entry `index`; `false` (and no change) if there is no such entry, so the
    /// field only ever holds -1 or a valid index (`llama_sampler_sample` aborts otherwise).
    pub(crate) fn select(&mut self, index: usize) -> bool {
        match i64::try_from(index) {
            Ok(i) if index < self.raw.size => {
                self.raw.selected = i;
                true
            }
            _ => false,
        }
    }

    /// Forgets the selection.
    pub(crate) fn clear_selection(&mut self) {
        self.raw.selected = -1;
    }

    /// The `sorted` flag (samplers after this one skip their own sort when it is set).
    pub(crate) fn sorted(&self) -> bool {
        self.raw.sorted
    }

    /// Sets the `sorted` flag.
    pub(crate) fn set_sorted(&mut self, sorted: bool) {
        self.raw.sorted = sorted;
    }
}
