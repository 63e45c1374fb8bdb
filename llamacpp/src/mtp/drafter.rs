//! [`MtpDrafter`]: the MTP-type context that runs the NextN block, fed and stepped one
//! sequence at a time; the context, its batch and the hidden-state capture are in
//! `raw/mtp.rs`.

use llamacpp_sys as sys;

use super::model::MtpModel;
use crate::backend;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::params::ContextParams;
use crate::raw::mtp::RawMtpContext;
use crate::vocab::Token;

/// The MTP draft context: the model's NextN block with its own KV cache, sequence 0.
///
/// Made by [`MtpSpeculative::new`](super::MtpSpeculative::new); exposed for callers that
/// drive their own loop.
pub struct MtpDrafter<'m> {
    raw: RawMtpContext<'m>,
    n_embd: usize,
    n_ctx: u32,
}

// SAFETY: the context, batch and capture buffer are used from one thread at a time (every
// method that touches them takes `&mut self`); `&MtpModel` is Send because `Model: Sync`.
unsafe impl Send for MtpDrafter<'_> {}

impl std::fmt::Debug for MtpDrafter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtpDrafter")
            .field("n_embd", &self.n_embd)
            .field("n_ctx", &self.n_ctx)
            .finish_non_exhaustive()
    }
}

impl<'m> MtpDrafter<'m> {
    /// An MTP context over `model` sized like `target` (context length, batch sizes,
    /// threads, cache types, flash attention), for one sequence.
    pub fn new(model: &'m MtpModel, target: &Context<'_>, like: &ContextParams) -> Result<Self> {
        Self::from_raw(model, target, &like.raw)
    }

    pub(super) fn from_raw(
        model: &'m MtpModel,
        target: &Context<'_>,
        l: &sys::llama_context_params,
    ) -> Result<Self> {
        backend::init();
        if !std::ptr::eq(target.model(), model.model()) {
            return Err(Error::Speculative(
                "the target context runs another model than the MTP head's".into(),
            ));
        }
        let n_embd = usize::try_from(model.n_embd()).unwrap_or(0);
        let mut raw = crate::raw::context::default_params();
        raw.n_ctx = target.n_ctx();
        raw.n_batch = target.n_batch();
        raw.n_ubatch = target.n_ubatch();
        raw.n_seq_max = 1;
        raw.n_threads = l.n_threads;
        raw.n_threads_batch = l.n_threads_batch;
        raw.type_k = l.type_k;
        raw.type_v = l.type_v;
        raw.flash_attn_type = l.flash_attn_type;
        raw.offload_kqv = l.offload_kqv;
        raw.op_offload = l.op_offload;
        raw.no_perf = l.no_perf;
        // The head's output state is read through the eval callback: it is not the context's
        // embedding output (the MTP graph sets none), and an embeddings context would also
        // force an output for every entry.
        raw.embeddings = false;
        Ok(MtpDrafter {
            raw: RawMtpContext::new(model, raw, n_embd)?,
            n_embd,
            n_ctx: target.n_ctx(),
        })
    }

    /// The model's hidden size: the length of every state row.
    pub fn n_embd(&self) -> usize {
        self.n_embd
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.raw.ctx_mut().memory_clear(true)
    }

    /// One past the last position held (0 when empty).
    pub fn n_past(&self) -> i32 {
        // Sequence 0 always exists, so this never errs.
        let p = self.raw.ctx().memory_seq_pos_max(0).unwrap_or(-1);
        p.max(-1) + 1
    }

    /// Drops every position from `pos` on (the MTP cache is plain attention, so it can).
    pub fn truncate(&mut self, pos: i32) -> Result<()> {
        if pos < 0 {
            return Err(Error::OutOfRange {
                what: "position",
                value: i64::from(pos),
                expected: ">= 0".into(),
            });
        }
        if self.raw.ctx_mut().memory_seq_rm(Some(0), Some(pos), None)? {
            Ok(())
        } else {
            Err(Error::Speculative(format!(
                "the MTP cache could not drop positions from {pos}"
            )))
        }
    }

    /// Appends entries at positions `start..`: `tokens[i]` with the target's hidden state of
    /// the position before it, `states[i * n_embd..][..n_embd]`. No outputs: this only fills
    /// the MTP cache so later drafts attend to the whole sequence.
    pub fn feed(&mut self, start: i32, tokens: &[Token], states: &[f32]) -> Result<()> {
        if states.len() != tokens.len() * self.n_embd {
            return Err(Error::Speculative(format!(
                "{} tokens need {} state values, got {}",
                tokens.len(),
                tokens.len() * self.n_embd,
                states.len()
            )));
        }
        let cap = self.raw.batch().capacity().max(1);
        let mut pos = start;
        for (chunk, rows) in tokens.chunks(cap).zip(states.chunks(cap * self.n_embd)) {
            self.raw.batch().clear();
            for (t, h) in chunk.iter().zip(rows.chunks(self.n_embd)) {
                self.raw.batch().push(t.id(), pos, h, false)?;
                pos += 1;
            }
            self.raw.process(false)?;
        }
        Ok(())
    }

    /// Decodes (`token` at `pos`, `state`) and returns the head's greedy prediction for
    /// `pos + 1`; with `chain`, also its output hidden state, the state of the next step.
    pub fn step(
        &mut self,
        token: Token,
        pos: i32,
        state: &[f32],
        chain: bool,
    ) -> Result<(Token, Option<Vec<f32>>)> {
        self.raw.batch().clear();
        self.raw.batch().push(token.id(), pos, state, true)?;
        self.raw.process(chain)?;
        // The decode just produced one output: -1 names it.
        let logits = self.raw.ctx().logits(-1)?;
        let next = Token::from_candidate(argmax(logits) as i32);
        let h = if chain {
            let Some(rows) = self.raw.take_captured() else {
                return Err(Error::Speculative(
                    "the MTP head's hidden state was not produced".into(),
                ));
            };
            Some(rows)
        } else {
            None
        };
        Ok((next, h))
    }
}

/// The index of the largest value (the first one on ties, as llama.cpp's greedy sampler).
pub(super) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
