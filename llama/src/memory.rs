//! Memory (KV cache / recurrent state) operations and state save/load.

use std::path::Path;

use llama_sys as sys;

use crate::context::Context;
use crate::error::{Error, Result, c_string};
use crate::vocab::Token;

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

    /// Copies positions `[p0, p1)` of sequence `src` into `dst`.
    pub fn seq_cp(&mut self, src: i32, dst: i32, p0: Option<i32>, p1: Option<i32>) -> Result<()> {
        self.check_seq(src)?;
        self.check_seq(dst)?;
        let (a, b) = range(p0, p1)?;
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

    /// Divides the positions `[p0, p1)` of `seq` by `d` (must not be 0).
    pub fn seq_div(&mut self, seq: i32, p0: Option<i32>, p1: Option<i32>, d: i32) -> Result<()> {
        self.check_seq(seq)?;
        if d == 0 {
            return Err(Error::OutOfRange {
                what: "divisor",
                value: 0,
                expected: "!= 0".into(),
            });
        }
        let (a, b) = range(p0, p1)?;
        // SAFETY: valid memory; id, range and divisor checked.
        unsafe { sys::llama_memory_seq_div(self.mem(), seq, a, b, d) };
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

    /// The whole state (memory, outputs, RNG) as bytes.
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

    /// Saves the whole state and the tokens that produced it to a file.
    pub fn save_state_file(&mut self, path: impl AsRef<Path>, tokens: &[Token]) -> Result<()> {
        let p = c_string(&path.as_ref().to_string_lossy())?;
        let ids: Vec<i32> = tokens.iter().map(|t| t.id()).collect();
        // SAFETY: path NUL-terminated; ids valid for their length.
        let ok = unsafe {
            sys::llama_state_save_file(self.as_ptr(), p.as_ptr(), ids.as_ptr(), ids.len())
        };
        if ok {
            Ok(())
        } else {
            Err(Error::State("save to file"))
        }
    }

    /// Loads a state file written by [`save_state_file`](Self::save_state_file); returns its tokens.
    pub fn load_state_file(
        &mut self,
        path: impl AsRef<Path>,
        max_tokens: usize,
    ) -> Result<Vec<Token>> {
        let p = c_string(&path.as_ref().to_string_lossy())?;
        let mut ids = vec![0i32; max_tokens];
        let mut n = 0usize;
        // SAFETY: path NUL-terminated; `ids` has room for `max_tokens` tokens; n is written.
        let ok = unsafe {
            sys::llama_state_load_file(
                self.as_ptr(),
                p.as_ptr(),
                ids.as_mut_ptr(),
                max_tokens,
                &mut n,
            )
        };
        if !ok {
            return Err(Error::State("load from file"));
        }
        ids.truncate(n.min(max_tokens));
        let vocab = self.model().vocab();
        ids.into_iter().map(|id| vocab.token(id)).collect()
    }
}
