//! A prompt cache for one sequence of a context: each new prompt starts from the longest part
//! of it that some earlier prompt already left in memory, on every model kind.
//!
//! On a pure-attention model a divergent prompt only needs the cached tail cut off. A recurrent
//! or hybrid model (Qwen3-Next, Mamba) keeps a state that cannot be rolled back, so the cache
//! takes [`SeqCheckpoint`]s while it feeds prompts: where each prompt's new part starts, right
//! before each prompt's last token, and every [`checkpoint_every`](PromptCache::checkpoint_every)
//! tokens. An edited or regenerated last turn then restarts from the nearest checkpoint instead
//! of position 0. Other conversations are kept as whole sequence states, so switching between
//! conversations re-reads only what is new in each.

use std::mem::size_of;

use crate::batch::Batch;
use crate::checkpoint::SeqCheckpoint;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::vocab::Token;

/// The default spacing of checkpoints while feeding a long prompt, in tokens.
pub const DEFAULT_CHECKPOINT_EVERY: usize = 1024;

/// What a [`PromptCache`] did so far and what it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptCacheStats {
    /// Prompts prepared.
    pub prompts: u64,
    /// Prompts that started with at least one token already in memory.
    pub hits: u64,
    /// Prompt tokens that were already in memory (summed over prompts).
    pub tokens_reused: u64,
    /// Tokens decoded by [`PromptCache::feed`].
    pub tokens_fed: u64,
    /// Times the sequence was rolled back by restoring a checkpoint.
    pub checkpoint_restores: u64,
    /// Times a stored conversation was brought back into the sequence.
    pub conversation_restores: u64,
    /// Stored conversations dropped to stay under the memory bound.
    pub evictions: u64,
    /// Checkpoints of the current conversation dropped to stay under the memory bound.
    pub checkpoints_dropped: u64,
    /// Host bytes held now: checkpoints, and the states and tokens of stored conversations.
    pub bytes: usize,
    /// Checkpoints held now (of the current and of stored conversations).
    pub checkpoints: usize,
    /// Conversations stored now (besides the one in the sequence).
    pub conversations: usize,
}

/// Tokens a sequence holds and the checkpoints taken along them (sorted by position).
#[derive(Default)]
struct Conversation {
    tokens: Vec<Token>,
    checkpoints: Vec<SeqCheckpoint>,
}

impl Conversation {
    /// How many tokens of a prompt sharing `common` leading tokens with this conversation can
    /// stay in memory: all of them if nothing must be cut (or the memory can cut a tail),
    /// else as many as the nearest checkpoint at or before `common` keeps.
    fn usable(&self, common: usize, rollback_needs_checkpoint: bool) -> usize {
        if !rollback_needs_checkpoint || common == self.tokens.len() {
            return common;
        }
        self.checkpoints
            .iter()
            .rev()
            .map(|c| c.pos() as usize)
            .find(|&p| p <= common)
            .unwrap_or(0)
    }

    fn checkpoint_bytes(&self) -> usize {
        self.checkpoints.iter().map(SeqCheckpoint::size).sum()
    }
}

/// A conversation moved out of the sequence: its whole sequence state.
struct Stored {
    conv: Conversation,
    state: Vec<u8>,
    last_used: u64,
}

impl Stored {
    fn bytes(&self) -> usize {
        self.state.len()
            + self.conv.checkpoint_bytes()
            + self.conv.tokens.len() * size_of::<Token>()
    }
}

/// Reuses cached prompt prefixes in one sequence of one context (sequence 0 by default).
///
/// Call [`prepare`](Self::prepare) with the whole prompt, [`feed`](Self::feed) with the tokens
/// it did not find in memory, generate, and report the tokens the generator decoded with
/// [`record_generated`](Self::record_generated). The cache binds to the first context it is
/// used with and refuses any other (its states only fit that context). Its host memory
/// (checkpoints and stored conversations) stays under the bound given to [`new`](Self::new):
/// the least recently used stored conversations go first, then the current conversation's
/// earliest checkpoints.
///
/// Only the end of the sequence is checked against what the cache recorded: if the sequence
/// was cleared or cut elsewhere, the cache starts over; rewriting its tokens in place behind
/// the cache's back gives wrong outputs (never memory errors).
///
/// ```no_run
/// use llamacpp::generate::{Generator, StopAt};
/// use llamacpp::prompt_cache::PromptCache;
/// # use llamacpp::{Context, ContextParams, Model, SamplerChain};
/// # let model = Model::load("m.gguf", Default::default())?;
/// # let mut ctx = Context::new(&model, ContextParams::default())?;
/// # let mut sampler = SamplerChain::builder(model.vocab()).greedy().build()?;
/// let mut cache = PromptCache::new(256 << 20).checkpoint_every(512);
/// for text in ["<|im_start|>user\nHi", "<|im_start|>user\nHello"] {
///     let prompt = model.vocab().tokenize(text, true, true)?;
///     let cached = cache.prepare(&mut ctx, &prompt)?;
///     cache.feed(&mut ctx, &prompt[cached..])?;
///     let stop = StopAt { max_tokens: 16, ..Default::default() };
///     let mut generator = Generator::resume(&mut ctx, &mut sampler, prompt.len() as i32, stop);
///     while let Some(piece) = generator.next_piece() {
///         print!("{}", piece?);
///     }
///     let decoded = generator.decoded_tokens().to_vec();
///     cache.record_generated(&decoded);
/// }
/// println!("{:?}", cache.stats());
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct PromptCache {
    seq: i32,
    max_bytes: usize,
    every: usize,
    ctx_id: Option<u64>,
    live: Conversation,
    stored: Vec<Stored>,
    clock: u64,
    stats: PromptCacheStats,
}

impl std::fmt::Debug for PromptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCache")
            .field("seq", &self.seq)
            .field("max_bytes", &self.max_bytes)
            .field("checkpoint_every", &self.every)
            .field("tokens", &self.live.tokens.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl PromptCache {
    /// A cache of sequence 0 holding at most `max_bytes` of host memory.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            seq: 0,
            max_bytes,
            every: DEFAULT_CHECKPOINT_EVERY,
            ctx_id: None,
            live: Conversation::default(),
            stored: Vec::new(),
            clock: 0,
            stats: PromptCacheStats::default(),
        }
    }

    /// Takes a checkpoint every `n_tokens` positions while feeding (0: only where a prompt's new
    /// part starts and before its last token). Only models that need checkpoints take them.
    pub fn checkpoint_every(mut self, n_tokens: usize) -> Self {
        self.every = n_tokens;
        self
    }

    /// Caches sequence `seq` instead of 0 (checked against the context on first use).
    pub fn seq(mut self, seq: i32) -> Self {
        self.seq = seq;
        self
    }

    /// The tokens the sequence holds, as far as the cache knows.
    pub fn tokens(&self) -> &[Token] {
        &self.live.tokens
    }

    /// Counters and current holdings.
    pub fn stats(&self) -> PromptCacheStats {
        PromptCacheStats {
            bytes: self.bytes(),
            checkpoints: self.live.checkpoints.len()
                + self
                    .stored
                    .iter()
                    .map(|s| s.conv.checkpoints.len())
                    .sum::<usize>(),
            conversations: self.stored.len(),
            ..self.stats
        }
    }

    /// Drops everything held and forgets the context, so the cache can serve another one. The
    /// next [`prepare`](Self::prepare) clears the sequence, finding it longer than expected.
    pub fn clear(&mut self) {
        self.ctx_id = None;
        self.live = Conversation::default();
        self.stored.clear();
    }

    /// Makes the sequence hold the longest prefix of `prompt` that memory can give (from the
    /// sequence itself or from a stored conversation), at most all but the last token so that
    /// decoding it yields logits. Returns that prefix's length: feed `prompt[n..]` next.
    pub fn prepare(&mut self, ctx: &mut Context<'_>, prompt: &[Token]) -> Result<usize> {
        self.bind(ctx)?;
        if prompt.is_empty() {
            return Err(Error::EmptyBatch);
        }
        self.sync(ctx)?;
        let limit = prompt.len() - 1;
        let needs = ctx.needs_checkpoints();
        let live_use = self
            .live
            .usable(common_prefix(&self.live.tokens, prompt).min(limit), needs);
        let best = self
            .stored
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let common = common_prefix(&s.conv.tokens, prompt).min(limit);
                (i, s.conv.usable(common, needs))
            })
            .max_by_key(|&(i, usable)| (usable, std::cmp::Reverse(i)));
        let kept = match best {
            Some((i, usable)) if usable > live_use => {
                let entry = self.stored.swap_remove(i);
                self.stash_live(ctx)?;
                self.swap_in(ctx, entry)?;
                self.rollback(ctx, usable)?
            }
            _ => {
                // Keep the current conversation for later when this prompt throws most of it
                // away (another conversation), not when it only replaces the last turn.
                if live_use < self.live.tokens.len() / 2 {
                    self.stash_live(ctx)?;
                }
                self.rollback(ctx, live_use)?
            }
        };
        self.stats.prompts += 1;
        self.stats.hits += u64::from(kept > 0);
        self.stats.tokens_reused += kept as u64;
        self.enforce_bound();
        Ok(kept)
    }

    /// Decodes `tokens` after what the sequence holds, in `n_batch` chunks, taking checkpoints
    /// (on models that need them) where they start, every
    /// [`checkpoint_every`](Self::checkpoint_every) positions, and before the last token, which
    /// is decoded with logits. `tokens` is the end of a prompt: sample next.
    pub fn feed(&mut self, ctx: &mut Context<'_>, tokens: &[Token]) -> Result<()> {
        self.feed_with_marks(ctx, tokens, &[])
    }

    /// [`feed`](Self::feed), also checkpointing at the absolute positions in `marks` that fall
    /// inside `tokens`: where a later prompt is likely to diverge, such as the start of the
    /// last message (an edit of it then restarts there).
    pub fn feed_with_marks(
        &mut self,
        ctx: &mut Context<'_>,
        tokens: &[Token],
        marks: &[usize],
    ) -> Result<()> {
        self.bind(ctx)?;
        if tokens.is_empty() {
            return Err(Error::EmptyBatch);
        }
        self.sync(ctx)?;
        let needs = ctx.needs_checkpoints();
        let n_batch = ctx.n_batch().max(1) as usize;
        // Where this prompt's new part starts: an edit of that part restarts here.
        if needs && !self.live.tokens.is_empty() {
            self.checkpoint(ctx)?;
        }
        let last = tokens.len() - 1;
        let mut i = 0;
        while i < tokens.len() {
            let pos = self.live.tokens.len();
            let mut stop = (i + n_batch).min(tokens.len());
            if needs {
                if let Some(k) = pos.checked_div(self.every) {
                    let next = (k + 1) * self.every;
                    stop = stop.min(i + (next - pos));
                }
                if let Some(mark) = marks.iter().filter(|&&m| m > pos).min() {
                    stop = stop.min(i + (mark - pos));
                }
                // The last token alone, after a checkpoint that a regenerate restarts from.
                if i < last {
                    stop = stop.min(last);
                }
            }
            let chunk = &tokens[i..stop];
            let mut batch = Batch::from_tokens(chunk, pos as i32, self.seq)?;
            ctx.decode(&mut batch)?;
            self.live.tokens.extend_from_slice(chunk);
            self.stats.tokens_fed += chunk.len() as u64;
            i = stop;
            let end = self.live.tokens.len();
            let wanted = i == last
                || (self.every > 0 && end.is_multiple_of(self.every))
                || marks.contains(&end);
            if needs && i < tokens.len() && wanted {
                self.checkpoint(ctx)?;
            }
        }
        self.enforce_bound();
        Ok(())
    }

    /// Records tokens decoded after the prompt by someone else (a generator), in order.
    pub fn record_generated(&mut self, tokens: &[Token]) {
        self.live.tokens.extend_from_slice(tokens);
    }

    fn bind(&mut self, ctx: &Context<'_>) -> Result<()> {
        match self.ctx_id {
            Some(id) if id != ctx.id() => Err(Error::Checkpoint(
                "this prompt cache holds another context's states (clear it first)".into(),
            )),
            Some(_) => Ok(()),
            None => {
                ctx.check_seq(self.seq)?;
                self.ctx_id = Some(ctx.id());
                Ok(())
            }
        }
    }

    /// Starts over when the sequence's end is not where the recorded tokens end (it was
    /// cleared or cut elsewhere): its checkpoints could not be restored then.
    fn sync(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let end = ctx.seq_pos_max(self.seq)?.map_or(0, |p| p as usize + 1);
        if end != self.live.tokens.len() {
            ctx.seq_rm(Some(self.seq), None, None)?;
            self.live = Conversation::default();
        }
        Ok(())
    }

    /// Cuts the sequence back to `n` tokens, `n` being what [`Conversation::usable`] allowed.
    /// Returns the tokens kept: 0 when the memory refused (then the sequence is cleared).
    fn rollback(&mut self, ctx: &mut Context<'_>, n: usize) -> Result<usize> {
        let len = self.live.tokens.len();
        if n == len {
            return Ok(n);
        }
        let cut = if n == 0 {
            false
        } else if ctx.needs_checkpoints() {
            match self.live.checkpoints.iter().find(|c| c.pos() as usize == n) {
                Some(cp) => ctx.restore_checkpoint(cp).is_ok(),
                None => false,
            }
        } else {
            ctx.seq_rm(Some(self.seq), Some(n as i32), None)?
        };
        if !cut {
            ctx.seq_rm(Some(self.seq), None, None)?;
            self.live = Conversation::default();
            return Ok(0);
        }
        if ctx.needs_checkpoints() {
            self.stats.checkpoint_restores += 1;
        }
        self.live.tokens.truncate(n);
        self.live.checkpoints.retain(|c| c.pos() as usize <= n);
        Ok(n)
    }

    fn checkpoint(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let pos = self.live.tokens.len();
        if self.live.checkpoints.last().map(|c| c.pos() as usize) == Some(pos) {
            return Ok(());
        }
        let cp = ctx.seq_checkpoint(self.seq)?;
        self.live.checkpoints.push(cp);
        Ok(())
    }

    /// Stores a copy of the current conversation (unless it alone exceeds the bound); the
    /// sequence is left as it is.
    fn stash_live(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if self.live.tokens.is_empty() {
            return Ok(());
        }
        let state = ctx.seq_state(self.seq)?;
        let conv = Conversation {
            tokens: self.live.tokens.clone(),
            checkpoints: self.live.checkpoints.clone(),
        };
        // A stored conversation that this one extends can never serve better.
        self.stored
            .retain(|s| !conv.tokens.starts_with(&s.conv.tokens));
        self.clock += 1;
        let entry = Stored {
            conv,
            state,
            last_used: self.clock,
        };
        if entry.bytes() <= self.max_bytes {
            self.stored.push(entry);
        }
        Ok(())
    }

    /// Replaces the sequence with a stored conversation. The state is one this context
    /// wrote with `seq_state`, never bytes from outside.
    fn swap_in(&mut self, ctx: &mut Context<'_>, entry: Stored) -> Result<()> {
        ctx.seq_rm(Some(self.seq), None, None)?;
        self.live = Conversation::default();
        // On failure the sequence is cleared, which the empty `live` matches.
        ctx.set_seq_state(&entry.state, self.seq)?;
        self.live = entry.conv;
        self.stats.conversation_restores += 1;
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.live.checkpoint_bytes() + self.stored.iter().map(Stored::bytes).sum::<usize>()
    }

    /// Drops the least recently used stored conversations, then the current conversation's
    /// earliest checkpoints (the latest serve edits of the last turn), until under the bound.
    fn enforce_bound(&mut self) {
        while self.bytes() > self.max_bytes {
            if let Some(oldest) = self
                .stored
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
            {
                self.stored.swap_remove(oldest);
                self.stats.evictions += 1;
            } else if !self.live.checkpoints.is_empty() {
                self.live.checkpoints.remove(0);
                self.stats.checkpoints_dropped += 1;
            } else {
                break;
            }
        }
    }
}

fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
