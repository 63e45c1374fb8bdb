//! Memory (KV cache / recurrent state) operations and state save/load.

use std::path::Path;

use llamacpp_sys as sys;

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
            // llama.cpp may have written part of a truncated or foreign file's state.
            self.clear_memory(true);
            return Err(Error::State("load from file"));
        }
        ids.truncate(n.min(max_tokens));
        let vocab = self.model().vocab();
        ids.into_iter().map(|id| vocab.token(id)).collect()
    }

    /// Saves the state of sequence `seq` and the tokens that produced it to a file;
    /// returns the bytes written. Load it with [`load_seq_state_file`](Self::load_seq_state_file)
    /// into any sequence of a context of the same model and shape.
    ///
    /// ```no_run
    /// # use llamacpp::{Batch, Context, ContextParams, Model, ModelParams};
    /// # fn main() -> llamacpp::Result<()> {
    /// # let model = Model::load("model.gguf", ModelParams::default())?;
    /// let mut ctx = Context::new(&model, ContextParams::default().n_seq_max(2))?;
    /// let prompt = model.vocab().tokenize("Hello", true, false)?;
    /// ctx.decode(&mut Batch::from_tokens(&prompt, 0, 0)?)?;
    /// ctx.save_seq_state_file("seq0.bin", 0, &prompt)?;
    /// let tokens = ctx.load_seq_state_file("seq0.bin", 1)?;
    /// assert_eq!(tokens, prompt);
    /// # Ok(()) }
    /// ```
    pub fn save_seq_state_file(
        &mut self,
        path: impl AsRef<Path>,
        seq: i32,
        tokens: &[Token],
    ) -> Result<usize> {
        self.check_seq(seq)?;
        if u32::try_from(tokens.len()).is_err() {
            return Err(Error::OutOfRange {
                what: "token count",
                value: tokens.len() as i64,
                expected: "< 2^32 (the file stores a u32)".into(),
            });
        }
        let p = c_string(&path.as_ref().to_string_lossy())?;
        let ids: Vec<i32> = tokens.iter().map(|t| t.id()).collect();
        // SAFETY: path NUL-terminated; id checked; ids valid for their length.
        let n = unsafe {
            sys::llama_state_seq_save_file(self.as_ptr(), p.as_ptr(), seq, ids.as_ptr(), ids.len())
        };
        if n == 0 {
            return Err(Error::State("save sequence to file"));
        }
        Ok(n)
    }

    /// Loads a file written by [`save_seq_state_file`](Self::save_seq_state_file)
    /// into sequence `seq` and returns its tokens. On failure `seq` is cleared, so
    /// no half-restored cache is left behind.
    ///
    /// The file is read here and its state handed to llama.cpp's bounds-checked
    /// buffer reader: `llama_state_seq_load_file` reads a truncated file past its
    /// end without noticing and then fails an assertion, aborting the process.
    pub fn load_seq_state_file(&mut self, path: impl AsRef<Path>, seq: i32) -> Result<Vec<Token>> {
        self.check_seq(seq)?;
        let bytes = std::fs::read(path.as_ref())?;
        let word = |i: usize| -> Option<u32> {
            let b = bytes.get(4 * i..4 * i + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if word(0) != Some(sys::LLAMA_STATE_SEQ_MAGIC)
            || word(1) != Some(sys::LLAMA_STATE_SEQ_VERSION)
        {
            return Err(Error::State(
                "load sequence file (not a sequence state file of this version)",
            ));
        }
        let n_tokens =
            word(2).ok_or(Error::State("load sequence file (truncated header)"))? as usize;
        let state_at = n_tokens
            .checked_mul(4)
            .and_then(|n| n.checked_add(12))
            .filter(|&end| end <= bytes.len())
            .ok_or(Error::State(
                "load sequence file (token count exceeds the file)",
            ))?;
        let ids: Vec<i32> = (0..n_tokens)
            .filter_map(|i| word(3 + i))
            .map(|w| w as i32)
            .collect();
        let vocab = self.model().vocab();
        let tokens = ids
            .into_iter()
            .map(|id| vocab.token(id))
            .collect::<Result<Vec<Token>>>()?;
        // The file holds the state without the in-memory header (a magic and the
        // source sequence id) that `llama_state_seq_set_data` expects first. Take that
        // header from the library itself: the state of the (now emptied) target sequence.
        let _ = self.seq_rm(Some(seq), None, None)?;
        let empty = self.seq_state(seq)?;
        let header = empty
            .get(..8)
            .ok_or(Error::State("load sequence from file (no state header)"))?;
        let mut buf = Vec::with_capacity(8 + bytes.len() - state_at);
        buf.extend_from_slice(header);
        buf.extend_from_slice(&bytes[state_at..]);
        self.set_seq_state(&buf, seq)
            .map_err(|_| Error::State("load sequence from file"))?;
        Ok(tokens)
    }
}
