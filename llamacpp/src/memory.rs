//! Memory (KV cache / recurrent state) operations and state save/load.

use llamacpp_sys as sys;

use crate::context::Context;
use crate::error::{Error, Result};

fn range(p0: Option<i32>, p1: Option<i32>) -> Result<(i32, i32)> {
    let (a, b) = (p0.unwrap_or(-1), p1.unwrap_or(-1));
    for v in [p0, p1].into_iter().flatten() {
        if v < 0 {
            return Err(Error::OutOfRange {
                what: "position",
                value: i64::from(v),
                expected: ">= 0 (None = open end)".into(),
            });
        }
    }
    if let (Some(x), Some(y)) = (p0, p1)
        && x > y
    {
        return Err(Error::OutOfRange {
            what: "position range start",
            value: i64::from(x),
            expected: format!("<= end {y}"),
        });
    }
    Ok((a, b))
}

impl Context<'_> {
    fn mem(&self) -> sys::llama_memory_t {
        // SAFETY: valid context.
        unsafe { sys::llama_get_memory(self.as_ptr()) }
    }

    /// Clears the memory of every sequence (`data`: also zero the buffers).
    pub fn clear_memory(&mut self, data: bool) {
        // SAFETY: valid memory handle.
        unsafe { sys::llama_memory_clear(self.mem(), data) }
    }

    /// Removes positions `[p0, p1)` of `seq` (`None` = every sequence; open ends with `None`).
    /// Returns `false` when the memory cannot remove a partial range (recurrent models).
    pub fn seq_rm(&mut self, seq: Option<i32>, p0: Option<i32>, p1: Option<i32>) -> Result<bool> {
        if let Some(s) = seq {
            self.check_seq(s)?;
        }
        let (a, b) = range(p0, p1)?;
        // SAFETY: valid memory; ids and range checked.
        Ok(unsafe { sys::llama_memory_seq_rm(self.mem(), seq.unwrap_or(-1), a, b) })
    }

    /// Copies positions `[p0, p1)` of sequence `src` into `dst`; an empty range copies nothing.
    ///
    /// Without [`kv_unified`](crate::ContextParams::kv_unified) each sequence of a KV cache
    /// has its own stream, and only whole sequences can be copied between streams: a part
    /// of one is [`Error::Unsupported`].
    pub fn seq_cp(&mut self, src: i32, dst: i32, p0: Option<i32>, p1: Option<i32>) -> Result<()> {
        self.check_seq(src)?;
        self.check_seq(dst)?;
        let (a, b) = range(p0, p1)?;
        // llama.cpp copies the whole sequence between streams whatever the range says
        // (an empty one included).
        if p0.is_some() && p0 == p1 {
            return Ok(());
        }
        // Between streams llama.cpp asserts the range covers the whole cache; a start
        // of 0 and an open end are the only range that always does.
        let partial = p0.is_some_and(|x| x > 0) || p1.is_some();
        if partial && src != dst && !self.kv_unified && self.n_seq_max() > 1 {
            return Err(Error::Unsupported(format!(
                "copying part of sequence {src} to {dst}: each sequence has its own KV stream \
                 (kv_unified is off), and only whole sequences can be copied between them"
            )));
        }
        // SAFETY: valid memory; ids and range checked.
        unsafe { sys::llama_memory_seq_cp(self.mem(), src, dst, a, b) };
        Ok(())
    }

    /// Removes every sequence but `seq`.
    pub fn seq_keep(&mut self, seq: i32) -> Result<()> {
        self.check_seq(seq)?;
        // SAFETY: valid memory; id checked.
        unsafe { sys::llama_memory_seq_keep(self.mem(), seq) };
        Ok(())
    }

    /// Adds `delta` to the positions `[p0, p1)` of `seq`.
    pub fn seq_add(
        &mut self,
        seq: i32,
        p0: Option<i32>,
        p1: Option<i32>,
        delta: i32,
    ) -> Result<()> {
        self.check_seq(seq)?;
        let (a, b) = range(p0, p1)?;
        self.check_shift("seq_add")?;
        if let Some(max) = self.seq_pos_max(seq)?
            && i64::from(max) + i64::from(delta) > i64::from(i32::MAX)
        {
            return Err(Error::OutOfRange {
                what: "position delta",
                value: i64::from(delta),
                expected: "no overflow".into(),
            });
        }
        // SAFETY: valid memory; id and range checked; no overflow.
        unsafe { sys::llama_memory_seq_add(self.mem(), seq, a, b, delta) };
        Ok(())
    }

    /// Divides the positions `[p0, p1)` of `seq` by `d` (at least 1: a negative divisor
    /// would make positions negative).
    pub fn seq_div(&mut self, seq: i32, p0: Option<i32>, p1: Option<i32>, d: i32) -> Result<()> {
        self.check_seq(seq)?;
        if d < 1 {
            return Err(Error::OutOfRange {
                what: "divisor",
                value: i64::from(d),
                expected: ">= 1".into(),
            });
        }
        let (a, b) = range(p0, p1)?;
        self.check_shift("seq_div")?;
        // SAFETY: valid memory; id, range and divisor checked.
        unsafe { sys::llama_memory_seq_div(self.mem(), seq, a, b, d) };
        Ok(())
    }

    /// `Err` when the memory cannot move positions: llama.cpp asserts in `seq_add`/`seq_div`
    /// on M-RoPE models (several positions per token) and aborts in the K-shift of the
    /// next decode on others (Step35). A context without memory has nothing to move.
    fn check_shift(&self, what: &str) -> Result<()> {
        let mem = self.mem();
        // SAFETY: valid, non-NULL memory handle.
        if !mem.is_null() && !unsafe { sys::llama_memory_can_shift(mem) } {
            return Err(Error::Unsupported(format!(
                "{what}: this model's memory cannot shift positions (M-RoPE or per-layer RoPE)"
            )));
        }
        Ok(())
    }

    /// Smallest position of `seq` in memory (`None` when empty).
    pub fn seq_pos_min(&self, seq: i32) -> Result<Option<i32>> {
        self.check_seq(seq)?;
        // SAFETY: valid memory; id checked.
        let p = unsafe { sys::llama_memory_seq_pos_min(self.mem(), seq) };
        Ok((p >= 0).then_some(p))
    }

    /// Largest position of `seq` in memory (`None` when empty).
    pub fn seq_pos_max(&self, seq: i32) -> Result<Option<i32>> {
        self.check_seq(seq)?;
        // SAFETY: valid memory; id checked.
        let p = unsafe { sys::llama_memory_seq_pos_max(self.mem(), seq) };
        Ok((p >= 0).then_some(p))
    }

    /// The memory's state (KV cache cells and tensors, or recurrent states) as bytes.
    ///
    /// This llama.cpp saves neither the last decode's logits and embeddings nor any
    /// sampler's random state: decode again after a restore before sampling.
    pub fn state(&mut self) -> Result<Vec<u8>> {
        // SAFETY: valid context.
        let size = unsafe { sys::llama_state_get_size(self.as_ptr()) };
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` has `size` bytes.
        let n = unsafe { sys::llama_state_get_data(self.as_ptr(), buf.as_mut_ptr(), size) };
        if n == 0 || n > size {
            return Err(Error::State("save"));
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// Restores a state saved by [`state`](Self::state) from a context of the same model and shape.
    ///
    /// State data is parsed by llama.cpp: only load bytes this program saved.
    pub fn set_state(&mut self, bytes: &[u8]) -> Result<()> {
        // The state starts with the architecture's name, whose declared length llama.cpp
        // allocates before checking it against the bytes left: a few bytes could make it
        // allocate 4 GiB (found by the `state` fuzz target).
        let declared = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if declared.is_none_or(|n| n > bytes.len() - 4) {
            return Err(Error::State(
                "load (the state's header declares more bytes than it has)",
            ));
        }
        // SAFETY: `bytes` is valid for its length; llama.cpp bounds-checks its reads.
        let n = unsafe { sys::llama_state_set_data(self.as_ptr(), bytes.as_ptr(), bytes.len()) };
        if n == 0 {
            return Err(Error::State("load"));
        }
        Ok(())
    }

    /// The state of one sequence as bytes.
    pub fn seq_state(&mut self, seq: i32) -> Result<Vec<u8>> {
        self.check_seq(seq)?;
        // SAFETY: valid context; id checked.
        let size = unsafe { sys::llama_state_seq_get_size(self.as_ptr(), seq) };
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` has `size` bytes.
        let n =
            unsafe { sys::llama_state_seq_get_data(self.as_ptr(), buf.as_mut_ptr(), size, seq) };
        if n == 0 || n > size {
            return Err(Error::State("save sequence"));
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// Restores one sequence's state into `seq`. On failure `seq` is cleared, so
    /// no half-restored cache is left behind.
    pub fn set_seq_state(&mut self, bytes: &[u8], seq: i32) -> Result<()> {
        self.check_seq(seq)?;
        // SAFETY: `bytes` valid for its length; id checked.
        let n = unsafe {
            sys::llama_state_seq_set_data(self.as_ptr(), bytes.as_ptr(), bytes.len(), seq)
        };
        if n == 0 {
            let _ = self.seq_rm(Some(seq), None, None);
            return Err(Error::State("load sequence"));
        }
        Ok(())
    }
}
