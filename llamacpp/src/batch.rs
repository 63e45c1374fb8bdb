//! [`Batch`]: tokens to decode, with positions, sequence ids and output flags.
//!
//! The batch owns its arrays in Rust and checks every row as it is added, so
//! the overflows that hand-filled `llama_batch`es allow (too many sequence ids
//! per token, more tokens than allocated, unset positions) cannot happen.

use llamacpp_sys as sys;

use crate::error::{Error, Result};
use crate::vocab::Token;

/// A batch of tokens for [`Context::decode`](crate::Context::decode).
///
/// ```
/// # fn demo(t: llamacpp::Token) -> llamacpp::Result<()> {
/// let mut batch = llamacpp::Batch::new(512, 1)?;
/// batch.add(t, 0, &[0], true)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Batch {
    capacity: usize,
    n_seq_max: usize,
    tokens: Vec<i32>,
    pos: Vec<i32>,
    n_seq_id: Vec<i32>,
    /// `n_seq_max` slots per token; row `i` starts at `i * n_seq_max`.
    seq_ids: Vec<i32>,
    outputs: Vec<i8>,
    seq_ptrs: Vec<*mut i32>,
}

// SAFETY: the raw pointers in `seq_ptrs` only ever point into `seq_ids`, which
// the batch owns; they are rebuilt before each use.
unsafe impl Send for Batch {}

impl Batch {
    /// A batch for up to `capacity` tokens, each in up to `n_seq_max` sequences.
    pub fn new(capacity: usize, n_seq_max: usize) -> Result<Batch> {
        if capacity == 0 || capacity > i32::MAX as usize {
            return Err(Error::OutOfRange {
                what: "batch capacity",
                value: capacity as i64,
                expected: "1..2^31".into(),
            });
        }
        if n_seq_max == 0 || n_seq_max > 256 {
            return Err(Error::OutOfRange {
                what: "n_seq_max",
                value: n_seq_max as i64,
                expected: "1..=256".into(),
            });
        }
        Ok(Batch {
            capacity,
            n_seq_max,
            tokens: Vec::with_capacity(capacity),
            pos: Vec::with_capacity(capacity),
            n_seq_id: Vec::with_capacity(capacity),
            seq_ids: Vec::with_capacity(capacity * n_seq_max),
            outputs: Vec::with_capacity(capacity),
            seq_ptrs: Vec::new(),
        })
    }

    /// A single-sequence batch of `tokens` at positions `start..`, with the
    /// output flag on the last token only (the common prompt case).
    pub fn from_tokens(tokens: &[Token], start: i32, seq: i32) -> Result<Batch> {
        let mut b = Batch::new(tokens.len().max(1), 1)?;
        for (i, &t) in tokens.iter().enumerate() {
            let pos = start.checked_add(i as i32).ok_or(Error::OutOfRange {
                what: "position",
                value: i64::from(start) + i as i64,
                expected: "< 2^31".into(),
            })?;
            b.add(t, pos, &[seq], i + 1 == tokens.len())?;
        }
        Ok(b)
    }

    /// Appends one token at position `pos` in sequences `seqs`, requesting its
    /// logits/embeddings when `output` is set.
    pub fn add(&mut self, token: Token, pos: i32, seqs: &[i32], output: bool) -> Result<()> {
        if self.tokens.len() >= self.capacity {
            return Err(Error::BatchFull {
                capacity: self.capacity,
            });
        }
        if seqs.is_empty() || seqs.len() > self.n_seq_max {
            return Err(Error::OutOfRange {
                what: "sequence ids per token",
                value: seqs.len() as i64,
                expected: format!("1..={}", self.n_seq_max),
            });
        }
        if let Some(&bad) = seqs.iter().find(|&&s| s < 0) {
            return Err(Error::OutOfRange {
                what: "sequence id",
                value: i64::from(bad),
                expected: ">= 0".into(),
            });
        }
        if pos < 0 {
            return Err(Error::OutOfRange {
                what: "position",
                value: i64::from(pos),
                expected: ">= 0".into(),
            });
        }
        self.tokens.push(token.id());
        self.pos.push(pos);
        self.n_seq_id.push(seqs.len() as i32);
        self.seq_ids.extend_from_slice(seqs);
        self.seq_ids.resize(self.tokens.len() * self.n_seq_max, 0);
        self.outputs.push(i8::from(output));
        Ok(())
    }

    /// Removes all tokens (keeps the allocation).
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.pos.clear();
        self.n_seq_id.clear();
        self.seq_ids.clear();
        self.outputs.clear();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the batch holds no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Maximum number of tokens.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the output flag of the last token (e.g. after adding a prompt).
    pub fn set_last_output(&mut self, on: bool) {
        if let Some(o) = self.outputs.last_mut() {
            *o = i8::from(on);
        }
    }

    pub(crate) fn token_ids(&self) -> &[i32] {
        &self.tokens
    }

    pub(crate) fn positions(&self) -> &[i32] {
        &self.pos
    }

    /// Every sequence id used by any token.
    pub(crate) fn seq_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.n_seq_id.iter().enumerate().flat_map(|(i, &n)| {
            self.seq_ids[i * self.n_seq_max..i * self.n_seq_max + n as usize]
                .iter()
                .copied()
        })
    }

    /// Batch indices whose outputs were requested.
    pub(crate) fn output_indices(&self) -> Vec<i32> {
        self.outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| **o != 0)
            .map(|(i, _)| i as i32)
            .collect()
    }

    /// A `llama_batch` view of this batch, valid while `self` is not changed.
    pub(crate) fn as_raw(&mut self) -> sys::llama_batch {
        let base = self.seq_ids.as_mut_ptr();
        let n = self.n_seq_max;
        // Row i starts at i * n_seq_max < seq_ids.len() for every token i, so each pointer
        // stays inside `seq_ids` (`wrapping_add` only because nothing is read here).
        self.seq_ptrs = (0..self.tokens.len())
            .map(|i| base.wrapping_add(i * n))
            .collect();
        sys::llama_batch {
            n_tokens: self.tokens.len() as i32,
            token: self.tokens.as_mut_ptr(),
            embd: std::ptr::null_mut(),
            pos: self.pos.as_mut_ptr(),
            n_seq_id: self.n_seq_id.as_mut_ptr(),
            seq_id: self.seq_ptrs.as_mut_ptr(),
            logits: self.outputs.as_mut_ptr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_checks_capacity_and_sequence_ids() {
        let t = Token::from_trusted(1);
        let mut b = Batch::new(2, 2).unwrap();
        assert!(matches!(
            b.add(t, 0, &[], false),
            Err(Error::OutOfRange { .. })
        ));
        // The llama-cpp-2 heap overflow: more sequence ids than allocated per token.
        assert!(matches!(
            b.add(t, 0, &[0, 1, 2], false),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            b.add(t, 0, &[-1], false),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            b.add(t, -5, &[0], false),
            Err(Error::OutOfRange { .. })
        ));
        b.add(t, 0, &[0, 1], false).unwrap();
        b.add(t, 1, &[1], true).unwrap();
        assert!(matches!(
            b.add(t, 2, &[0], false),
            Err(Error::BatchFull { capacity: 2 })
        ));
        assert_eq!(b.seq_ids().collect::<Vec<_>>(), vec![0, 1, 1]);
        assert_eq!(b.output_indices(), vec![1]);
        let raw = b.as_raw();
        assert_eq!(raw.n_tokens, 2);
        assert!(Batch::new(0, 1).is_err());
        assert!(Batch::new(1, 0).is_err());
    }
}
