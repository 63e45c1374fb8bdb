//! Memory (KV cache / recurrent state) operations and state save/load.
//!
//! The argument checks (sequence ids, position ranges, divisors, shifts) are in
//! `raw/memory.rs`, next to the calls they guard.

use crate::context::Context;
use crate::error::{Error, Result};

impl Context<'_> {
    /// Clears the memory of every sequence (`data`: also zero the buffers).
    pub fn clear_memory(&mut self, data: bool) {
        self.raw_mut().memory_clear(data)
    }

    /// Removes positions `[p0, p1)` of `seq` (`None` = every sequence; open ends with `None`).
    /// Returns `false` when the memory cannot remove a partial range (recurrent models).
    pub fn seq_rm(&mut self, seq: Option<i32>, p0: Option<i32>, p1: Option<i32>) -> Result<bool> {
        self.raw_mut().memory_seq_rm(seq, p0, p1)
    }

    /// Copies positions `[p0, p1)` of sequence `src` into `dst`; an empty range copies nothing.
    ///
    /// Without [`kv_unified`](crate::ContextParams::kv_unified) each sequence of a KV cache
    /// has its own stream, and only whole sequences can be copied between streams: a part
    /// of one is [`Error::Unsupported`].
    pub fn seq_cp(&mut self, src: i32, dst: i32, p0: Option<i32>, p1: Option<i32>) -> Result<()> {
        self.raw_mut().memory_seq_cp(src, dst, p0, p1)
    }

    /// Removes every sequence but `seq`.
    pub fn seq_keep(&mut self, seq: i32) -> Result<()> {
        self.raw_mut().memory_seq_keep(seq)
    }

    /// Adds `delta` to the positions `[p0, p1)` of `seq`.
    pub fn seq_add(
        &mut self,
        seq: i32,
        p0: Option<i32>,
        p1: Option<i32>,
        delta: i32,
    ) -> Result<()> {
        self.raw_mut().memory_seq_add(seq, p0, p1, delta)
    }

    /// Divides the positions `[p0, p1)` of `seq` by `d` (at least 1: a negative divisor
    /// would make positions negative).
    pub fn seq_div(&mut self, seq: i32, p0: Option<i32>, p1: Option<i32>, d: i32) -> Result<()> {
        self.raw_mut().memory_seq_div(seq, p0, p1, d)
    }

    /// Smallest position of `seq` in memory (`None` when empty).
    pub fn seq_pos_min(&self, seq: i32) -> Result<Option<i32>> {
        let p = self.raw().memory_seq_pos_min(seq)?;
        Ok((p >= 0).then_some(p))
    }

    /// Largest position of `seq` in memory (`None` when empty).
    pub fn seq_pos_max(&self, seq: i32) -> Result<Option<i32>> {
        let p = self.raw().memory_seq_pos_max(seq)?;
        Ok((p >= 0).then_some(p))
    }

    /// The memory's state (KV cache cells and tensors, or recurrent states) as bytes.
    ///
    /// This llama.cpp saves neither the last decode's logits and embeddings nor any
    /// sampler's random state: decode again after a restore before sampling.
    pub fn state(&mut self) -> Result<Vec<u8>> {
        self.raw_mut().state_data().ok_or(Error::State("save"))
    }

    /// Restores a state saved by [`state`](Self::state) from a context of the same model and shape.
    ///
    /// State data is parsed by llama.cpp: only load bytes this program saved.
    pub fn set_state(&mut self, bytes: &[u8]) -> Result<()> {
        if !self.raw_mut().set_state_data(bytes)? {
            return Err(Error::State("load"));
        }
        Ok(())
    }

    /// The state of one sequence as bytes.
    pub fn seq_state(&mut self, seq: i32) -> Result<Vec<u8>> {
        self.raw_mut()
            .seq_state_data(seq, false)?
            .ok_or(Error::State("save sequence"))
    }

    /// Restores one sequence's state into `seq`. On failure `seq` is cleared, so
    /// no half-restored cache is left behind.
    pub fn set_seq_state(&mut self, bytes: &[u8], seq: i32) -> Result<()> {
        if !self.raw_mut().set_seq_state_data(bytes, seq, false)? {
            let _ = self.seq_rm(Some(seq), None, None);
            return Err(Error::State("load sequence"));
        }
        Ok(())
    }
}
