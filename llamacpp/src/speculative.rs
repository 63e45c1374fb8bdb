//! Greedy speculative decoding: a small draft model proposes tokens, the target model checks
//! them all in one batch.
//!
//! Each step the draft guesses up to `n_draft` tokens one by one (cheap), then the target
//! decodes the pending token and every guess in a single batch with logits at each position.
//! The guesses are kept while they equal the target's own argmax; the first disagreement is
//! replaced by the target's choice. The output is therefore exactly what greedy decoding of
//! the target alone produces; the draft only changes how many target decodes it takes.
//!
//! Rejected guesses must leave both memories. An attention KV cache drops them with
//! [`Context::seq_rm`]; a recurrent or hybrid memory (Qwen3-Next, Mamba) cannot cut a tail, so
//! a [`SeqCheckpoint`] is taken before the guesses go in, restored after
//! a partial acceptance, and the accepted tokens are decoded again.

use llamacpp_sys as sys;

use crate::batch::Batch;
use crate::checkpoint::SeqCheckpoint;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::vocab::{Token, Vocab};

/// The sequence both contexts decode in.
const SEQ: i32 = 0;

/// Counters of a [`SpeculativeDecoder`] run (reset by [`SpeculativeDecoder::start`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeculativeStats {
    /// Tokens generated (the output, without a final end-of-generation token).
    pub generated: usize,
    /// Tokens the draft proposed.
    pub drafted: usize,
    /// Proposed tokens the target accepted.
    pub accepted: usize,
    /// Verification rounds (one target batch each).
    pub steps: usize,
    /// `decode` calls on the target: prompt chunks, verification batches, and re-decodes after
    /// a partial acceptance on a model that needs checkpoints.
    pub target_decodes: usize,
    /// `decode` calls on the draft.
    pub draft_decodes: usize,
}

impl SpeculativeStats {
    /// Accepted over drafted tokens (0 when nothing was drafted).
    ///
    /// ```
    /// let s = llamacpp::speculative::SpeculativeStats { drafted: 8, accepted: 6, ..Default::default() };
    /// assert_eq!(s.acceptance_rate(), 0.75);
    /// ```
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }
}

/// Greedy generation on a target context, sped up by guesses from a draft context.
///
/// Both contexts work in sequence 0, which [`start`](Self::start) clears. The draft must have
/// the target's vocabulary (same size, and the same text and attributes for every token).
///
/// ```no_run
/// use llamacpp::{Context, ContextParams, Model};
/// use llamacpp::speculative::SpeculativeDecoder;
///
/// let target = Model::load("big.gguf", Default::default())?;
/// let draft = Model::load("small.gguf", Default::default())?;
/// let mut tctx = Context::new(&target, ContextParams::default().n_ctx(2048))?;
/// let mut dctx = Context::new(&draft, ContextParams::default().n_ctx(2048))?;
/// let prompt = target.vocab().tokenize("Once upon a time", true, false)?;
/// let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 8)?;
/// let tokens = spec.generate(&prompt, 64)?;
/// println!("{} tokens, {:.0}% of the guesses accepted", tokens.len(),
///          100.0 * spec.stats().acceptance_rate());
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct SpeculativeDecoder<'a, 't, 'd> {
    target: &'a mut Context<'t>,
    draft: &'a mut Context<'d>,
    n_draft: usize,
    /// Prompt, then every output token; while generating, the last one (the target's choice
    /// after the rest) is decoded by neither context yet.
    hist: Vec<Token>,
    n_prompt: usize,
    /// Leading tokens of `hist` held in the draft's memory (the target holds all but the last).
    draft_n: usize,
    /// Output tokens already returned by [`step`](Self::step).
    emitted: usize,
    max_tokens: usize,
    done: bool,
    stats: SpeculativeStats,
}

impl std::fmt::Debug for SpeculativeDecoder<'_, '_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeculativeDecoder")
            .field("n_draft", &self.n_draft)
            .field("generated", &self.output().len())
            .field("done", &self.done)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// `Err` unless the two vocabularies give every id the same meaning: a draft token is
/// handed to the target by id, so one id naming different text would silently corrupt it.
fn check_same_vocab(target: Vocab<'_>, draft: Vocab<'_>) -> Result<()> {
    let n = target.n_tokens();
    if draft.n_tokens() != n {
        return Err(Error::Speculative(format!(
            "vocabulary sizes differ: target {n}, draft {}",
            draft.n_tokens()
        )));
    }
    let types = (target.raw().vocab_type(), draft.raw().vocab_type());
    if types.0 != types.1 {
        return Err(Error::Speculative(format!(
            "tokenizer types differ: target {}, draft {}",
            types.0, types.1
        )));
    }
    if types.0 == sys::LLAMA_VOCAB_TYPE_NONE {
        // Models without a tokenizer have bare ids (and llama.cpp aborts on asking for their
        // text): equal sizes are all there is to compare.
        return Ok(());
    }
    for id in 0..n {
        let (t, d) = (target.token(id)?, draft.token(id)?);
        if target.text(t)? != draft.text(d)? || target.attr(t)? != draft.attr(d)? {
            return Err(Error::Speculative(format!(
                "token {id} differs: target {:?}, draft {:?}",
                target.text(t)?,
                draft.text(d)?
            )));
        }
    }
    Ok(())
}

/// The first highest logit's token (the tie-break of llama.cpp's greedy sampler).
fn argmax(ctx: &Context<'_>, i: i32) -> Result<Token> {
    let logits = ctx.logits(i)?;
    let mut best = 0usize;
    for (j, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = j;
        }
    }
    ctx.model().vocab().token(best as i32)
}

/// Decodes `tokens` at positions `start..` of sequence 0 in `n_batch` chunks (logits for the
/// last token only) and returns the number of decode calls.
fn decode_run(ctx: &mut Context<'_>, tokens: &[Token], start: usize) -> Result<usize> {
    let n_batch = ctx.n_batch().max(1) as usize;
    let mut calls = 0;
    for (i, chunk) in tokens.chunks(n_batch).enumerate() {
        let mut b = Batch::from_tokens(chunk, pos(start + i * n_batch)?, SEQ)?;
        ctx.decode(&mut b)?;
        calls += 1;
    }
    Ok(calls)
}

fn pos(p: usize) -> Result<i32> {
    i32::try_from(p).map_err(|_| Error::OutOfRange {
        what: "position",
        value: i64::try_from(p).unwrap_or(i64::MAX),
        expected: "< 2^31".into(),
    })
}

/// A checkpoint when `ctx` cannot drop a tail, else `None` (`seq_rm` will do).
fn checkpoint_if_needed(ctx: &mut Context<'_>) -> Result<Option<SeqCheckpoint>> {
    if ctx.needs_checkpoints() {
        ctx.seq_checkpoint(SEQ).map(Some)
    } else {
        Ok(None)
    }
}

/// Drops positions `from..` of sequence 0 from an attention-only memory.
fn cut_tail(ctx: &mut Context<'_>, from: usize) -> Result<()> {
    if ctx.seq_rm(Some(SEQ), Some(pos(from)?), None)? {
        Ok(())
    } else {
        Err(Error::Speculative(
            "the memory refused to drop rejected tokens".into(),
        ))
    }
}

impl<'a, 't, 'd> SpeculativeDecoder<'a, 't, 'd> {
    /// A decoder proposing up to `n_draft` tokens per step.
    ///
    /// Errors: [`Error::Speculative`] when the vocabularies differ; [`Error::OutOfRange`] when
    /// `n_draft` is 0 or a context's `n_batch` cannot take the pending token plus `n_draft`
    /// guesses in one batch.
    pub fn new(
        target: &'a mut Context<'t>,
        draft: &'a mut Context<'d>,
        n_draft: usize,
    ) -> Result<Self> {
        check_same_vocab(target.model().vocab(), draft.model().vocab())?;
        let n_batch = target.n_batch() as usize;
        if n_draft == 0 || n_draft + 1 > n_batch {
            return Err(Error::OutOfRange {
                what: "n_draft",
                value: i64::try_from(n_draft).unwrap_or(i64::MAX),
                expected: format!(
                    "1..={} (the target's n_batch - 1)",
                    n_batch.saturating_sub(1)
                ),
            });
        }
        Ok(Self {
            target,
            draft,
            n_draft,
            hist: Vec::new(),
            n_prompt: 0,
            draft_n: 0,
            emitted: 0,
            max_tokens: 0,
            done: true,
            stats: SpeculativeStats::default(),
        })
    }

    /// Counters since the last [`start`](Self::start).
    pub fn stats(&self) -> SpeculativeStats {
        self.stats
    }

    /// Tokens generated so far by the current run.
    pub fn output(&self) -> &[Token] {
        self.hist.get(self.n_prompt..).unwrap_or(&[])
    }

    /// Whether the current run has ended (end of generation or `max_tokens`).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Clears sequence 0 of both contexts, decodes `prompt` in the target (the draft takes it
    /// with its first guesses) and prepares to generate at most `max_tokens` tokens.
    pub fn start(&mut self, prompt: &[Token], max_tokens: usize) -> Result<()> {
        if prompt.is_empty() {
            return Err(Error::EmptyBatch);
        }
        self.done = true;
        self.stats = SpeculativeStats::default();
        self.hist = prompt.to_vec();
        self.n_prompt = prompt.len();
        self.draft_n = 0;
        self.emitted = 0;
        self.max_tokens = max_tokens;
        self.target.seq_rm(Some(SEQ), None, None)?;
        self.draft.seq_rm(Some(SEQ), None, None)?;
        if max_tokens == 0 {
            return Ok(());
        }
        self.stats.target_decodes += decode_run(self.target, prompt, 0)?;
        let first = argmax(self.target, -1)?;
        self.done = false;
        self.push_output(&[first]);
        Ok(())
    }

    /// The output tokens not returned yet: the first call after [`start`](Self::start)
    /// returns the token the prompt gave at once, later calls run one draft-and-verify round
    /// and return the tokens it fixed (at least one). Empty when the run is done. After an
    /// error the run is over; call [`start`](Self::start) again.
    pub fn step(&mut self) -> Result<Vec<Token>> {
        if self.emitted == self.output().len() && !self.done {
            let r = self.verify_round();
            if r.is_err() {
                self.done = true;
            }
            r?;
        }
        let out = self.output();
        let new = out.get(self.emitted..).unwrap_or(&[]).to_vec();
        self.emitted = out.len();
        Ok(new)
    }

    /// [`start`](Self::start), then [`step`](Self::step) until done; returns every token.
    pub fn generate(&mut self, prompt: &[Token], max_tokens: usize) -> Result<Vec<Token>> {
        self.start(prompt, max_tokens)?;
        while !self.done {
            self.step()?;
        }
        self.emitted = self.output().len();
        Ok(self.output().to_vec())
    }

    /// Appends output tokens, ending the run at the first end-of-generation token (left out)
    /// or at `max_tokens`.
    fn push_output(&mut self, tokens: &[Token]) {
        let vocab = self.target.model().vocab();
        for &t in tokens {
            if vocab.is_eog(t) {
                self.done = true;
                break;
            }
            self.hist.push(t);
            if self.hist.len() - self.n_prompt >= self.max_tokens {
                self.done = true;
                break;
            }
        }
        self.stats.generated = self.hist.len() - self.n_prompt;
    }

    fn verify_round(&mut self) -> Result<()> {
        let len = self.hist.len();
        let pending = self.hist[len - 1];
        // Guessing past `max_tokens` or the contexts' ends would be wasted work: the round
        // fixes at most guesses + 1 tokens, and the target holds `len + guesses` positions.
        let room = (self.max_tokens.saturating_sub(len - self.n_prompt + 1))
            .min((self.target.n_ctx() as usize).saturating_sub(len))
            .min((self.draft.n_ctx() as usize + 1).saturating_sub(len));
        let k = self.n_draft.min(room);
        let (guesses, draft_cp) = if k > 0 {
            self.propose(k)?
        } else {
            (Vec::new(), None)
        };
        let k = guesses.len();

        let target_cp = if k > 0 {
            checkpoint_if_needed(self.target)?
        } else {
            None
        };
        let mut batch = Batch::new(k + 1, 1)?;
        batch.add(pending, pos(len - 1)?, &[SEQ], true)?;
        for (i, &g) in guesses.iter().enumerate() {
            batch.add(g, pos(len + i)?, &[SEQ], true)?;
        }
        self.target.decode(&mut batch)?;
        self.stats.target_decodes += 1;
        self.stats.steps += 1;
        self.stats.drafted += k;

        let mut m = 0;
        let mut next = argmax(self.target, 0)?;
        while m < k && guesses[m] == next {
            m += 1;
            next = argmax(self.target, pos(m)?)?;
        }
        self.stats.accepted += m;

        // The target must hold hist + guesses[..m]: `len + m` positions, not `len + k`.
        if m < k {
            match &target_cp {
                None => cut_tail(self.target, len + m)?,
                Some(cp) => {
                    self.target.restore_checkpoint(cp)?;
                    let mut redo = Vec::with_capacity(m + 1);
                    redo.push(pending);
                    redo.extend_from_slice(&guesses[..m]);
                    self.stats.target_decodes += decode_run(self.target, &redo, len - 1)?;
                }
            }
        }
        // The draft holds hist + guesses[..k - 1]; keep only what the target accepted.
        if k > 0 && m + 1 < k {
            match &draft_cp {
                None => {
                    cut_tail(self.draft, len + m)?;
                    self.draft_n = len + m;
                }
                Some(cp) => {
                    // The accepted guesses are decoded with the next round's first batch.
                    self.draft.restore_checkpoint(cp)?;
                    self.draft_n = len;
                }
            }
        }

        let mut fixed = guesses[..m].to_vec();
        fixed.push(next);
        self.push_output(&fixed);
        Ok(())
    }

    /// Lets the draft guess up to `k` tokens after `hist`; returns the guesses and, for a
    /// draft that needs one, a checkpoint at the end of `hist`.
    fn propose(&mut self, k: usize) -> Result<(Vec<Token>, Option<SeqCheckpoint>)> {
        let len = self.hist.len();
        let backlog = &self.hist[self.draft_n..];
        self.stats.draft_decodes += decode_run(self.draft, backlog, self.draft_n)?;
        self.draft_n = len;
        let vocab = self.draft.model().vocab();
        let mut guess = argmax(self.draft, -1)?;
        let cp = checkpoint_if_needed(self.draft)?;
        let mut guesses = vec![guess];
        // A guess that ends generation is the last one worth checking.
        while guesses.len() < k && !vocab.is_eog(guess) {
            let mut b = Batch::from_tokens(&[guess], pos(self.draft_n)?, SEQ)?;
            self.draft.decode(&mut b)?;
            self.stats.draft_decodes += 1;
            self.draft_n += 1;
            guess = argmax(self.draft, -1)?;
            guesses.push(guess);
        }
        Ok((guesses, cp))
    }
}
