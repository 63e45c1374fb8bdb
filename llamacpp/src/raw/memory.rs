//! [`RawContext`]'s memory (`llama_memory_*`: KV cache / recurrent state) and state
//! (`llama_state_*`) calls, each with the argument checks that keep llama.cpp from
//! aborting or corrupting memory: sequence ids, position ranges, divisors, shifts.

use llamacpp_sys as sys;

use super::context::RawContext;
use crate::error::{Error, Result};

/// `[p0, p1)` as llama.cpp takes it (-1 = open end), after checking that the positions are
/// not negative and not reversed: the memory API trusts them (a reversed range and a negative
/// offset wrote out of bounds, CVE-2026-21869).
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

impl RawContext<'_> {
    /// The context's memory; NULL for a context without one (an encoder-only model), which
    /// every `llama_memory_*` call checks for (and then does nothing or returns -1/false).
    fn mem(&self) -> sys::llama_memory_t {
        // SAFETY: valid context.
        unsafe { sys::llama_get_memory(self.as_ptr()) }
    }

    /// Whether the context has memory (KV cache or recurrent state).
    pub(crate) fn has_memory(&self) -> bool {
        !self.mem().is_null()
    }

    /// Clears the memory of every sequence (`data`: also zero the buffers).
    pub(crate) fn memory_clear(&mut self, data: bool) {
        // SAFETY: the memory handle of a valid context (or NULL, checked by llama.cpp).
        unsafe { sys::llama_memory_clear(self.mem(), data) }
    }

    /// Removes positions `[p0, p1)` of `seq` (`None` = every sequence); `false` when the memory
    /// cannot remove a partial range.
    pub(crate) fn memory_seq_rm(
        &mut self,
        seq: Option<i32>,
        p0: Option<i32>,
        p1: Option<i32>,
    ) -> Result<bool> {
        if let Some(s) = seq {
            self.check_seq(s)?;
        }
        let (a, b) = range(p0, p1)?;
        // SAFETY: the memory handle of a valid context; sequence id (-1 = all) and range checked.
        Ok(unsafe { sys::llama_memory_seq_rm(self.mem(), seq.unwrap_or(-1), a, b) })
    }

    /// Copies positions `[p0, p1)` of `src` into `dst`; an empty range copies nothing. A part
    /// of a sequence between KV streams is `Unsupported` (llama.cpp asserts the range covers
    /// the whole cache there).
    pub(crate) fn memory_seq_cp(
        &mut self,
        src: i32,
        dst: i32,
        p0: Option<i32>,
        p1: Option<i32>,
    ) -> Result<()> {
        self.check_seq(src)?;
        self.check_seq(dst)?;
        let (a, b) = range(p0, p1)?;
        // llama.cpp copies the whole sequence between streams whatever the range says
        // (an empty one included).
        if p0.is_some() && p0 == p1 {
            return Ok(());
        }
        // A start of 0 and an open end are the only range that always covers the cache.
        let partial = p0.is_some_and(|x| x > 0) || p1.is_some();
        if partial && src != dst && !self.kv_unified && self.n_seq_max > 1 {
            return Err(Error::Unsupported(format!(
                "copying part of sequence {src} to {dst}: each sequence has its own KV stream \
                 (kv_unified is off), and only whole sequences can be copied between them"
            )));
        }
        // SAFETY: the memory handle of a valid context; ids and range checked, and a partial
        // range only within one stream.
        unsafe { sys::llama_memory_seq_cp(self.mem(), src, dst, a, b) };
        Ok(())
    }

    /// Removes every sequence but `seq`.
    pub(crate) fn memory_seq_keep(&mut self, seq: i32) -> Result<()> {
        self.check_seq(seq)?;
        // SAFETY: the memory handle of a valid context; id checked.
        unsafe { sys::llama_memory_seq_keep(self.mem(), seq) };
        Ok(())
    }

    /// Adds `delta` to the positions `[p0, p1)` of `seq`.
    pub(crate) fn memory_seq_add(
        &mut self,
        seq: i32,
        p0: Option<i32>,
        p1: Option<i32>,
        delta: i32,
    ) -> Result<()> {
        self.check_seq(seq)?;
        let (a, b) = range(p0, p1)?;
        self.check_shift("seq_add")?;
        let max = self.memory_seq_pos_max(seq)?;
        if max >= 0 && i64::from(max) + i64::from(delta) > i64::from(i32::MAX) {
            return Err(Error::OutOfRange {
                what: "position delta",
                value: i64::from(delta),
                expected: "no overflow".into(),
            });
        }
        // SAFETY: the memory handle of a valid context; id and range checked, the memory can
        // shift, and no position overflows.
        unsafe { sys::llama_memory_seq_add(self.mem(), seq, a, b, delta) };
        Ok(())
    }

    /// Divides the positions `[p0, p1)` of `seq` by `d` (at least 1: 0 divides by zero and a
    /// negative divisor would make positions negative).
    pub(crate) fn memory_seq_div(
        &mut self,
        seq: i32,
        p0: Option<i32>,
        p1: Option<i32>,
        d: i32,
    ) -> Result<()> {
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
        // SAFETY: the memory handle of a valid context; id, range and divisor checked, and
        // the memory can shift.
        unsafe { sys::llama_memory_seq_div(self.mem(), seq, a, b, d) };
        Ok(())
    }

    /// `Err` when the memory cannot move positions: llama.cpp asserts in `seq_add`/`seq_div`
    /// on M-RoPE models (several positions per token) and aborts in the K-shift of the
    /// next decode on others (Step35). A context without memory has nothing to move.
    fn check_shift(&self, what: &str) -> Result<()> {
        let mem = self.mem();
        // SAFETY: a valid, non-NULL memory handle (checked just before).
        if !mem.is_null() && !unsafe { sys::llama_memory_can_shift(mem) } {
            return Err(Error::Unsupported(format!(
                "{what}: this model's memory cannot shift positions (M-RoPE or per-layer RoPE)"
            )));
        }
        Ok(())
    }

    /// Smallest position of `seq` in memory, -1 when empty.
    pub(crate) fn memory_seq_pos_min(&self, seq: i32) -> Result<i32> {
        self.check_seq(seq)?;
        // SAFETY: the memory handle of a valid context; id checked.
        Ok(unsafe { sys::llama_memory_seq_pos_min(self.mem(), seq) })
    }

    /// Largest position of `seq` in memory, -1 when empty.
    pub(crate) fn memory_seq_pos_max(&self, seq: i32) -> Result<i32> {
        self.check_seq(seq)?;
        // SAFETY: the memory handle of a valid context; id checked.
        Ok(unsafe { sys::llama_memory_seq_pos_max(self.mem(), seq) })
    }

    /// The whole state as bytes; `None` when llama.cpp wrote none or more than it sized.
    pub(crate) fn state_data(&mut self) -> Option<Vec<u8>> {
        // SAFETY: valid context.
        let size = unsafe { sys::llama_state_get_size(self.as_ptr()) };
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` has `size` writable bytes.
        let n = unsafe { sys::llama_state_get_data(self.as_ptr(), buf.as_mut_ptr(), size) };
        if n == 0 || n > size {
            return None;
        }
        buf.truncate(n);
        Some(buf)
    }

    /// Loads a whole state; `Ok(false)` when llama.cpp refused it. `Err` for bytes whose
    /// header declares more than they hold: the state starts with the architecture's name,
    /// whose declared length llama.cpp allocates before checking it against the bytes left,
    /// so a few bytes could make it allocate 4 GiB (found by the `state` fuzz target).
    pub(crate) fn set_state_data(&mut self, bytes: &[u8]) -> Result<bool> {
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
        Ok(n != 0)
    }

    /// The flags of the sequence-state calls: only the host-side formats (the on-device one
    /// asserts on a buffer it did not make, llama.cpp #27439). Without flags the `_ext` calls
    /// are what `llama_state_seq_get_size`/`_get_data`/`_set_data` call.
    fn seq_flags(partial: bool) -> sys::llama_state_seq_flags {
        if partial {
            sys::LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY
        } else {
            0
        }
    }

    /// The state of sequence `seq` as bytes (`partial`: only the part that cannot drop a
    /// tail, llama.cpp's `LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY`); `Ok(None)` when llama.cpp
    /// wrote none or more than it sized.
    pub(crate) fn seq_state_data(&mut self, seq: i32, partial: bool) -> Result<Option<Vec<u8>>> {
        self.check_seq(seq)?;
        let (ctx, flags) = (self.as_ptr(), Self::seq_flags(partial));
        // SAFETY: valid context; id checked.
        let size = unsafe { sys::llama_state_seq_get_size_ext(ctx, seq, flags) };
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` has `size` writable bytes; id checked.
        let n =
            unsafe { sys::llama_state_seq_get_data_ext(ctx, buf.as_mut_ptr(), size, seq, flags) };
        if n == 0 || n > size {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(buf))
    }

    /// Loads a sequence state (`partial` as in [`seq_state_data`](Self::seq_state_data))
    /// into `seq`; `Ok(false)` when llama.cpp refused it (the sequence may be half written).
    pub(crate) fn set_seq_state_data(
        &mut self,
        bytes: &[u8],
        seq: i32,
        partial: bool,
    ) -> Result<bool> {
        self.check_seq(seq)?;
        let (ctx, flags) = (self.as_ptr(), Self::seq_flags(partial));
        // SAFETY: `bytes` is valid for its length and llama.cpp bounds-checks its reads of the
        // host format; id checked.
        let n = unsafe {
            sys::llama_state_seq_set_data_ext(ctx, bytes.as_ptr(), bytes.len(), seq, flags)
        };
        Ok(n != 0)
    }
}
