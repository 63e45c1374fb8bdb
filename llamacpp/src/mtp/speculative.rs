//! [`MtpSpeculative`]: the draft / verify / roll-back loop over a target context and an
//! [`MtpDrafter`].

use super::drafter::{MtpDrafter, argmax};
use super::model::MtpModel;
use crate::batch::Batch;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::params::{ContextParams, Pooling};
use crate::vocab::Token;

/// Counters of one [`MtpSpeculative::generate`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtpStats {
    /// Verification rounds (target decodes after the prompt).
    pub rounds: usize,
    /// Drafted tokens the target verified.
    pub drafted: usize,
    /// Drafted tokens the target accepted.
    pub accepted: usize,
}

impl MtpStats {
    /// Accepted over drafted (0 when nothing was drafted).
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }
}

/// What [`MtpSpeculative::generate`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MtpOutput {
    /// The generated tokens (ending with an end-of-generation token if one was produced).
    pub tokens: Vec<Token>,
    /// How the drafting went.
    pub stats: MtpStats,
}

/// Greedy generation with the model's MTP head as the drafter.
///
/// ```no_run
/// use llamacpp::ContextParams;
/// use llamacpp::mtp::{MtpModel, MtpSpeculative};
/// let model = MtpModel::load("qwen3-next.gguf", Default::default())?;
/// let mut spec = MtpSpeculative::new(&model, ContextParams::default().n_ctx(4096), 3)?;
/// let prompt = model.vocab().tokenize("Hello", true, false)?;
/// let out = spec.generate(&prompt, 64)?;
/// println!("{} tokens, acceptance {:.2}", out.tokens.len(), out.stats.acceptance_rate());
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct MtpSpeculative<'m> {
    // The drafter is declared first so it is freed before the target context.
    drafter: MtpDrafter<'m>,
    target: Context<'m>,
    n_draft: usize,
}

impl std::fmt::Debug for MtpSpeculative<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtpSpeculative")
            .field("n_draft", &self.n_draft)
            .field("drafter", &self.drafter)
            .finish_non_exhaustive()
    }
}

impl<'m> MtpSpeculative<'m> {
    /// A target context from `params` (switched to per-token embeddings, which is how the
    /// target hands its hidden states over) and an MTP context sized like it, drafting up to
    /// `n_draft` tokens per round.
    ///
    /// The embeddings switch makes every token an output: the prompt then also pays for its
    /// logits, and `n_outputs_max` (if set) must cover the longest batch.
    pub fn new(model: &'m MtpModel, params: ContextParams, n_draft: usize) -> Result<Self> {
        if n_draft == 0 {
            return Err(Error::OutOfRange {
                what: "n_draft",
                value: 0,
                expected: ">= 1".into(),
            });
        }
        let params = params.embeddings(true).pooling(Pooling::None);
        let like = params.raw;
        let target = Context::new(model.model(), params)?;
        if n_draft as u64 + 1 > u64::from(target.n_batch()) {
            return Err(Error::OutOfRange {
                what: "n_draft",
                value: n_draft as i64,
                expected: format!("< n_batch = {}", target.n_batch()),
            });
        }
        let drafter = MtpDrafter::from_raw(model, &target, &like)?;
        Ok(MtpSpeculative {
            drafter,
            target,
            n_draft,
        })
    }

    /// The target context (its memory holds the last generation's sequence 0).
    pub fn target(&mut self) -> &mut Context<'m> {
        &mut self.target
    }

    /// The MTP draft context.
    pub fn drafter(&mut self) -> &mut MtpDrafter<'m> {
        &mut self.drafter
    }

    /// Most tokens drafted per round.
    pub fn n_draft(&self) -> usize {
        self.n_draft
    }

    /// Clears both contexts, decodes `prompt` and generates up to `max_tokens` tokens greedily,
    /// stopping after an end-of-generation token.
    pub fn generate(&mut self, prompt: &[Token], max_tokens: usize) -> Result<MtpOutput> {
        self.generate_with_drafts(prompt, max_tokens, |_, own| own.to_vec())
    }

    /// [`generate`](Self::generate) with the drafts that the target verifies replaced: a
    /// testing hook, not a stable API.
    ///
    /// Each round the MTP head drafts as usual (its cache gets the same entries), then
    /// `drafts_for(generated, own)` is called with the tokens generated so far (the last one is
    /// the round's first verified token, not yet decoded by the target) and the head's own
    /// drafts, and returns the drafts to verify instead: at most `own.len()` tokens, else
    /// [`Error::Speculative`]. Acceptance, roll-back and the MTP cache update then run exactly
    /// as in `generate`, so a caller that supplies known-good or known-bad drafts drives the
    /// accept and reject paths on demand. [`MtpStats::drafted`] counts the verified drafts.
    #[doc(hidden)]
    pub fn generate_with_drafts<F>(
        &mut self,
        prompt: &[Token],
        max_tokens: usize,
        mut drafts_for: F,
    ) -> Result<MtpOutput>
    where
        F: FnMut(&[Token], &[Token]) -> Vec<Token>,
    {
        let mut out = MtpOutput::default();
        if prompt.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let n_ctx = self.target.n_ctx() as usize;
        if prompt.len() + max_tokens + self.n_draft > n_ctx {
            return Err(Error::OutOfRange {
                what: "prompt + max_tokens + n_draft",
                value: (prompt.len() + max_tokens + self.n_draft) as i64,
                expected: format!("<= n_ctx = {n_ctx}"),
            });
        }
        if max_tokens == 0 {
            return Ok(out);
        }
        let vocab = self.target.model().vocab();
        let n_embd = self.drafter.n_embd();
        self.target.clear_memory(true);
        self.drafter.clear();

        // The prompt: every hidden state, and the first token from the last logits.
        let (states, first) = self.decode_target(0, prompt, true)?;
        let mut next = first.ok_or(Error::NoOutput(-1))?;
        // MTP entries 0..n: each prompt token with the state before it (zeros for the first).
        let mut shifted = vec![0.0f32; n_embd];
        shifted.extend_from_slice(&states[..states.len() - n_embd]);
        self.drafter.feed(0, prompt, &shifted)?;
        let mut pending = states[states.len() - n_embd..].to_vec();
        let mut pos = prompt.len() as i32;
        out.tokens.push(next);
        if vocab.is_eog(next) {
            return Ok(out);
        }

        while out.tokens.len() < max_tokens {
            // Draft: never more than the tokens still wanted after `next`.
            let k = self.n_draft.min(max_tokens - out.tokens.len());
            let mut own = Vec::with_capacity(k);
            let mut h = pending.clone();
            let mut tok = next;
            for i in 0..k {
                let chain = i + 1 < k;
                let (d, h_next) = self.drafter.step(tok, pos + i as i32, &h, chain)?;
                own.push(d);
                tok = d;
                if let Some(h_next) = h_next {
                    h = h_next;
                }
            }
            let drafts = drafts_for(&out.tokens, &own);
            if drafts.len() > k {
                return Err(Error::Speculative(format!(
                    "{} drafts to verify where the round allows {k}",
                    drafts.len()
                )));
            }
            // From here on `k` is the number of drafts verified.
            let k = drafts.len();
            out.stats.drafted += k;
            out.stats.rounds += 1;

            // Verify `next` and the drafts in one target batch.
            let checkpoint = self.target.seq_checkpoint(0)?;
            let mut run = Vec::with_capacity(k + 1);
            run.push(next);
            run.extend_from_slice(&drafts);
            let (mut rows, _) = self.decode_target(pos, &run, false)?;
            let mut m = 0;
            let bonus = loop {
                let y = Token::from_candidate(argmax(self.target.logits(m as i32)?) as i32);
                if m < k && y == drafts[m] && !vocab.is_eog(y) {
                    m += 1;
                } else {
                    break y;
                }
            };
            out.stats.accepted += m;
            if m < k {
                // Roll the target back to `pos` and redo what was accepted: the recurrent
                // state after a rejected draft cannot be cut back.
                self.target.restore_checkpoint(&checkpoint)?;
                rows = self.decode_target(pos, &run[..=m], false)?.0;
            }

            // The MTP cache keeps its entry at `pos` (`next` with `pending`, written by the
            // first draft step) and replaces the draft entries with the accepted tokens, each
            // paired with the target's state before it.
            self.drafter.truncate(pos + 1)?;
            if m > 0 {
                self.drafter
                    .feed(pos + 1, &drafts[..m], &rows[..m * n_embd])?;
            }
            pending = rows[m * n_embd..(m + 1) * n_embd].to_vec();

            for &t in drafts[..m].iter().chain(std::iter::once(&bonus)) {
                out.tokens.push(t);
                if vocab.is_eog(t) || out.tokens.len() >= max_tokens {
                    return Ok(out);
                }
            }
            next = bonus;
            pos += m as i32 + 1;
        }
        Ok(out)
    }

    /// Decodes `tokens` at `start..` on the target, every token an output; returns the hidden
    /// states (`n_embd` per token) and, with `last_token`, the greedy token after the last.
    fn decode_target(
        &mut self,
        start: i32,
        tokens: &[Token],
        last_token: bool,
    ) -> Result<(Vec<f32>, Option<Token>)> {
        let n_embd = self.drafter.n_embd();
        let cap = self.target.n_batch().max(1) as usize;
        let mut states = Vec::with_capacity(tokens.len() * n_embd);
        let mut last = None;
        let mut pos = start;
        for chunk in tokens.chunks(cap) {
            let mut batch = Batch::new(chunk.len(), 1)?;
            for &t in chunk {
                batch.add(t, pos, &[0], true)?;
                pos += 1;
            }
            self.target.decode(&mut batch)?;
            for i in 0..chunk.len() {
                let row = self.target.embeddings(i as i32)?;
                if row.len() != n_embd {
                    return Err(Error::Speculative(format!(
                        "the target's hidden state has {} values, expected {n_embd}",
                        row.len()
                    )));
                }
                states.extend_from_slice(row);
            }
            if last_token {
                let logits = self.target.logits(chunk.len() as i32 - 1)?;
                last = Some(Token::from_candidate(argmax(logits) as i32));
            }
        }
        Ok((states, last))
    }
}
