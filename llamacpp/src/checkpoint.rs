//! Sequence checkpoints: roll a sequence back to an earlier position, on every model kind.
//!
//! An attention KV cache can drop a tail (`seq_rm(seq, p, None)`), but a recurrent state
//! (Qwen3-Next's gated delta net and conv layers, Mamba) holds only the latest position, and a
//! sliding-window cache has already forgotten what slid out. A [`SeqCheckpoint`] keeps exactly
//! the part that cannot be cut back (llama.cpp's "partial" sequence state: the recurrent or SWA
//! cells, not the full-attention KV), so restoring it and dropping the attention tail puts the
//! sequence back where it was when the checkpoint was taken.

use crate::context::Context;
use crate::error::{Error, Result};

/// The state of one sequence at one position that [`Context::seq_rm`] cannot bring back.
///
/// Taken with [`Context::seq_checkpoint`], restored with [`Context::restore_checkpoint`]. It
/// can only be restored into the context and sequence it came from (it holds that context's
/// state format), and only while that sequence still reaches its position; the tokens before
/// it must be the ones it was taken after (rewriting them in between gives wrong outputs,
/// never memory errors).
#[derive(Clone)]
pub struct SeqCheckpoint {
    ctx_id: u64,
    seq: i32,
    pos: i32,
    bytes: Vec<u8>,
}

impl SeqCheckpoint {
    /// The number of tokens the sequence held when the checkpoint was taken: restoring it
    /// continues decoding at this position.
    pub fn pos(&self) -> i32 {
        self.pos
    }

    /// The sequence it was taken from.
    pub fn seq(&self) -> i32 {
        self.seq
    }

    /// Host bytes held (0 for a pure-attention model, whose tail `seq_rm` can cut).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

impl std::fmt::Debug for SeqCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeqCheckpoint")
            .field("seq", &self.seq)
            .field("pos", &self.pos)
            .field("size", &self.bytes.len())
            .finish()
    }
}

impl Context<'_> {
    /// Whether this context's memory has a part that cannot drop a tail (recurrent or
    /// sliding-window layers), so rolling back needs a [`SeqCheckpoint`].
    pub fn needs_checkpoints(&self) -> bool {
        let model = self.model();
        model.is_recurrent() || model.is_hybrid() || self.raw().n_swa() > 0
    }

    /// A checkpoint of sequence `seq` at its current end.
    ///
    /// ```no_run
    /// # use llamacpp::{Context, ContextParams, Model};
    /// # let model = Model::load("m.gguf", Default::default())?;
    /// # let mut ctx = Context::new(&model, ContextParams::default())?;
    /// let vocab = model.vocab();
    /// ctx.decode_tokens(&vocab.tokenize("Once upon a time", true, false)?)?;
    /// let cp = ctx.seq_checkpoint(0)?;
    /// ctx.decode_tokens(&vocab.tokenize(" there was", false, false)?)?;
    /// ctx.restore_checkpoint(&cp)?; // sequence 0 holds "Once upon a time" again
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn seq_checkpoint(&mut self, seq: i32) -> Result<SeqCheckpoint> {
        self.check_seq(seq)?;
        let pos = self.seq_pos_max(seq)?.map_or(0, |p| p + 1);
        let bytes = if self.needs_checkpoints() && pos > 0 {
            self.partial_state(seq)?
        } else {
            Vec::new()
        };
        Ok(SeqCheckpoint {
            ctx_id: self.id(),
            seq,
            pos,
            bytes,
        })
    }

    /// Rolls the checkpoint's sequence back to [`SeqCheckpoint::pos`]: restores the part that
    /// cannot be cut and removes every later position. Errors, changing nothing, when the
    /// checkpoint is from another context or the sequence no longer reaches its position.
    pub fn restore_checkpoint(&mut self, cp: &SeqCheckpoint) -> Result<()> {
        if cp.ctx_id != self.id() {
            return Err(Error::Checkpoint(
                "taken on another context (its state format may differ)".into(),
            ));
        }
        // A recurrent cell reports only its last position, so only the end can be checked;
        // the positions before it are the caller's to leave alone (see the type's docs).
        let end = self.seq_pos_max(cp.seq)?.map_or(0, |p| p + 1);
        if end < cp.pos {
            return Err(Error::Checkpoint(format!(
                "sequence {} ends at position {end}, before {} (cleared or cut since?)",
                cp.seq, cp.pos
            )));
        }
        if !cp.bytes.is_empty() {
            self.set_partial_state(&cp.bytes, cp.seq)?;
        } else if cp.pos == 0 {
            self.seq_rm(Some(cp.seq), None, None)?;
            return Ok(());
        }
        // The restored recurrent cell sits at `pos - 1`, so only the attention tail remains.
        if !self.seq_rm(Some(cp.seq), Some(cp.pos), None)? {
            self.seq_rm(Some(cp.seq), None, None)?;
            return Err(Error::Checkpoint(format!(
                "sequence {} could not drop positions from {} (cleared)",
                cp.seq, cp.pos
            )));
        }
        Ok(())
    }

    fn partial_state(&mut self, seq: i32) -> Result<Vec<u8>> {
        self.raw_mut()
            .seq_state_data(seq, true)?
            .ok_or(Error::State("save checkpoint"))
    }

    /// Only ever given bytes this context produced with [`Self::partial_state`] (the
    /// checkpoint's fields are private and tied to the context id), so llama.cpp reads a
    /// well-formed state of its own format.
    fn set_partial_state(&mut self, bytes: &[u8], seq: i32) -> Result<()> {
        if !self.raw_mut().set_seq_state_data(bytes, seq, true)? {
            let _ = self.seq_rm(Some(seq), None, None);
            return Err(Error::State("restore checkpoint"));
        }
        Ok(())
    }
}
