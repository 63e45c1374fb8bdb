//! The candidate list a [`CustomSampler`](crate::CustomSampler) edits: a checked
//! view of llama.cpp's `llama_token_data_array`.
//!
//! What the view guarantees to the C samplers after it, and how:
//!
//! - **token ids stay in the vocabulary**: [`TokenData`] has no constructor and
//!   is neither `Clone` nor `Default`, so safe code can only reorder the entries
//!   llama.cpp gave it, never write a new id (a chain would otherwise accept an
//!   out-of-range id, which grammar and penalty samplers index with);
//! - **the list never grows and never empties**: [`truncate`](TokenDataArray::truncate)
//!   keeps at least one entry (llama.cpp's selecting samplers assert on an empty list);
//! - **`selected` is -1 or a valid index**: [`select`](TokenDataArray::select)
//!   checks it and shrinking clears a selection that falls off the end
//!   (`llama_sampler_sample` aborts on an index outside the list);
//! - **`sorted` is only set by sorting**: mutable access clears it, because
//!   samplers after this one trust it to skip their own sort.

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::raw::candidates::RawCandidates;
use crate::vocab::Token;

/// One candidate: a token id with its logit and probability.
///
/// Only obtainable by reference from a [`TokenDataArray`]; see the module docs
/// for why it cannot be created or cloned:
///
/// ```compile_fail
/// fn forge(t: &llamacpp::TokenData) -> llamacpp::TokenData { t.clone() }
/// ```
/// ```compile_fail
/// let forged: llamacpp::TokenData = Default::default();
/// ```
// transparent: `raw::candidates` views llama.cpp's `llama_token_data` array as `[TokenData]`
#[repr(transparent)]
pub struct TokenData(sys::llama_token_data);

impl TokenData {
    /// The token.
    pub fn token(&self) -> Token {
        Token::from_candidate(self.0.id)
    }

    /// Its logit (log-odds).
    pub fn logit(&self) -> f32 {
        self.0.logit
    }

    /// Sets its logit; `f32::NEG_INFINITY` bans the token.
    pub fn set_logit(&mut self, logit: f32) {
        self.0.logit = logit;
    }

    /// Its probability, when a sampler before this one computed them (else 0).
    pub fn p(&self) -> f32 {
        self.0.p
    }

    /// Sets its probability.
    pub fn set_p(&mut self, p: f32) {
        self.0.p = p;
    }
}

impl std::fmt::Debug for TokenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenData")
            .field("id", &self.0.id)
            .field("logit", &self.0.logit)
            .field("p", &self.0.p)
            .finish()
    }
}

/// The candidates of one sampling step, as a [`CustomSampler`](crate::CustomSampler)
/// sees them. Never empty.
pub struct TokenDataArray<'a> {
    raw: RawCandidates<'a>,
}

impl std::fmt::Debug for TokenDataArray<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenDataArray")
            .field("len", &self.len())
            .field("selected", &self.selected())
            .field("sorted", &self.is_sorted())
            .finish()
    }
}

impl<'a> TokenDataArray<'a> {
    /// The view over a candidate list llama.cpp handed a custom sampler (at least
    /// one entry: the callback returns early on an empty one).
    pub(crate) fn new(raw: RawCandidates<'a>) -> Self {
        Self { raw }
    }

    /// Number of candidates (at least 1).
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Always `false`: llama.cpp never hands a custom sampler an empty list,
    /// and [`truncate`](Self::truncate) cannot empty it.
    pub fn is_empty(&self) -> bool {
        self.raw.len() == 0
    }

    /// The candidates.
    pub fn as_slice(&self) -> &[TokenData] {
        self.raw.entries()
    }

    /// The candidates, to reorder or re-weight. Clears the sorted flag.
    pub fn as_mut_slice(&mut self) -> &mut [TokenData] {
        self.raw.set_sorted(false);
        self.raw.entries_mut()
    }

    /// The index (not the token id) a selecting sampler chose, if any.
    pub fn selected(&self) -> Option<usize> {
        usize::try_from(self.raw.selected())
            .ok()
            .filter(|&i| i < self.raw.len())
    }

    /// Selects candidate `index` (what a selecting sampler does).
    pub fn select(&mut self, index: usize) -> Result<()> {
        if !self.raw.select(index) {
            return Err(Error::OutOfRange {
                what: "candidate index",
                value: index as i64,
                expected: format!("0..{}", self.raw.len()),
            });
        }
        Ok(())
    }

    /// Forgets the selection.
    pub fn clear_selection(&mut self) {
        self.raw.clear_selection();
    }

    /// Whether the candidates are sorted by descending logit.
    pub fn is_sorted(&self) -> bool {
        self.raw.sorted()
    }

    /// Sorts by descending logit (NaN last) and marks the list sorted.
    pub fn sort_by_logit(&mut self) {
        self.as_mut_slice()
            .sort_unstable_by(|a, b| nan_last(b.logit()).total_cmp(&nan_last(a.logit())));
        self.raw.set_sorted(true);
    }

    /// Keeps the first `len` candidates, but never fewer than one. A selection
    /// beyond the new end is cleared.
    pub fn truncate(&mut self, len: usize) {
        let len = len.max(1);
        if len < self.raw.len() {
            self.raw.shrink(len);
            if self.raw.selected() >= len as i64 {
                self.raw.clear_selection();
            }
        }
    }

    /// Sets every probability to the softmax of the logits (the order is kept;
    /// if every logit is -inf or NaN, every probability is 0).
    pub fn softmax(&mut self) {
        let max = self
            .as_slice()
            .iter()
            .map(TokenData::logit)
            .fold(f32::NEG_INFINITY, f32::max);
        let sorted = self.raw.sorted();
        let cands = self.as_mut_slice();
        let mut sum = 0.0f32;
        for c in cands.iter_mut() {
            let l = c.logit();
            // Banned (-inf) and NaN entries get 0; +inf entries share all the mass.
            let p = if max == f32::INFINITY {
                f32::from(u8::from(l == max))
            } else {
                (l - max).exp()
            };
            let p = if p.is_nan() { 0.0 } else { p };
            c.set_p(p);
            sum += p;
        }
        if sum > 0.0 {
            for c in cands.iter_mut() {
                c.set_p(c.p() / sum);
            }
        }
        self.raw.set_sorted(sorted);
    }
}

/// NaN sorts below every number, so it never ends up first.
fn nan_last(x: f32) -> f32 {
    if x.is_nan() { f32::NEG_INFINITY } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(logits: &[f32]) -> Vec<sys::llama_token_data> {
        logits
            .iter()
            .enumerate()
            .map(|(i, &logit)| sys::llama_token_data {
                id: i as i32,
                logit,
                p: 0.0,
            })
            .collect()
    }

    #[test]
    fn view_keeps_the_invariants_c_relies_on() {
        let mut data = data(&[0.5, 2.0, f32::NAN, -1.0]);
        let mut r = sys::llama_token_data_array {
            data: std::ptr::null_mut(),
            size: 0,
            selected: -1,
            sorted: false,
        };
        let mut v = TokenDataArray::new(RawCandidates::over(&mut data, &mut r));
        v.sort_by_logit();
        let ids: Vec<i32> = v.as_slice().iter().map(|t| t.token().id()).collect();
        assert_eq!(ids, [1, 0, 3, 2]);
        assert!(v.is_sorted());
        assert!(v.select(4).is_err());
        v.select(3).unwrap();
        v.truncate(2);
        assert_eq!(v.selected(), None);
        v.truncate(0);
        assert_eq!(v.len(), 1);
        assert!(!v.is_empty());
        v.as_mut_slice()[0].set_logit(1.0);
        assert!(!v.is_sorted());
        v.softmax();
        assert_eq!(v.as_slice()[0].p(), 1.0);
    }
}
