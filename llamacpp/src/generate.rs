//! High level: a streaming text generator and a chat session that keeps its
//! KV cache between turns.

use crate::batch::Batch;
use crate::chat::{ChatMessage, tokenize_conversation};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::sampler::SamplerChain;
use crate::vocab::{Token, Utf8Decoder};

/// When generation stops.
#[derive(Debug, Clone, Default)]
pub struct StopAt {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Stop (and cut the text) when the output contains one of these.
    pub stop_strings: Vec<String>,
}

/// Decodes `tokens` at positions `start..` in sequence 0, in `n_batch` chunks,
/// requesting logits for the last token.
pub fn feed(ctx: &mut Context<'_>, tokens: &[Token], start: i32) -> Result<()> {
    let n_batch = ctx.n_batch().max(1) as usize;
    for (i, chunk) in tokens.chunks(n_batch).enumerate() {
        let mut b = Batch::from_tokens(chunk, start + (i * n_batch) as i32, 0)?;
        ctx.decode(&mut b)?;
    }
    Ok(())
}

/// Streams UTF-8-safe text pieces until end of generation, `max_tokens` or a stop string.
///
/// Call [`next_piece`](Self::next_piece) until it returns `None`; the tokens
/// produced are in [`tokens`](Self::tokens).
pub struct Generator<'c, 'm> {
    ctx: &'c mut Context<'m>,
    sampler: &'c mut SamplerChain<'m>,
    decoder: Utf8Decoder,
    stop: StopAt,
    pos: i32,
    tokens: Vec<Token>,
    n_decoded: usize,
    text: String,
    done: bool,
}

impl<'c, 'm> Generator<'c, 'm> {
    /// Feeds `prompt` at position `pos` (the sequence's length so far) and prepares to generate.
    pub fn new(
        ctx: &'c mut Context<'m>,
        sampler: &'c mut SamplerChain<'m>,
        prompt: &[Token],
        pos: i32,
        stop: StopAt,
    ) -> Result<Self> {
        if prompt.is_empty() {
            return Err(Error::EmptyBatch);
        }
        feed(ctx, prompt, pos)?;
        Ok(Generator {
            ctx,
            sampler,
            decoder: Utf8Decoder::default(),
            stop,
            pos: pos + prompt.len() as i32,
            tokens: Vec::new(),
            n_decoded: 0,
            text: String::new(),
            done: false,
        })
    }

    /// Tokens generated so far.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Generated tokens that were also fed back to the context (all but a final
    /// one that ended generation by count or stop string).
    pub fn decoded_tokens(&self) -> &[Token] {
        &self.tokens[..self.n_decoded]
    }

    /// Position after the last token fed to the context.
    pub fn position(&self) -> i32 {
        self.pos
    }

    /// The next piece of text, `Some(Ok(""))` while a character is incomplete, `None` when done.
    pub fn next_piece(&mut self) -> Option<Result<String>> {
        if self.done {
            return None;
        }
        Some(self.step())
    }

    fn step(&mut self) -> Result<String> {
        let vocab = self.ctx.model().vocab();
        let t = self.sampler.sample(self.ctx, -1)?;
        if vocab.is_eog(t) || self.tokens.len() + 1 > self.stop.max_tokens.max(1) {
            self.done = true;
            if vocab.is_eog(t) {
                return Ok(self.decoder.finish());
            }
        }
        self.tokens.push(t);
        let mut piece = self.decoder.push(&vocab.piece_bytes(t, false)?);
        self.text.push_str(&piece);
        if let Some(cut) = self
            .stop
            .stop_strings
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            let keep = piece.len().saturating_sub(self.text.len() - cut);
            piece.truncate(keep);
            self.done = true;
            return Ok(piece);
        }
        if !self.done {
            let mut b = Batch::new(1, 1)?;
            b.add(t, self.pos, &[0], true)?;
            self.ctx.decode(&mut b)?;
            self.pos += 1;
            self.n_decoded += 1;
        }
        Ok(piece)
    }

    /// Runs to the end and returns the whole text.
    pub fn collect_text(mut self) -> Result<String> {
        let mut out = String::new();
        while let Some(p) = self.next_piece() {
            out.push_str(&p?);
        }
        Ok(out)
    }
}

/// A conversation whose KV cache is kept between turns: each turn only decodes
/// the tokens that are new since the last one.
pub struct ChatSession<'m> {
    ctx: Context<'m>,
    sampler: SamplerChain<'m>,
    template: String,
    messages: Vec<ChatMessage>,
    /// Tokens currently in the context's memory (sequence 0).
    cached: Vec<Token>,
}

impl<'m> ChatSession<'m> {
    /// A session over `ctx` using `template` (the model's, or a built-in name).
    pub fn new(ctx: Context<'m>, sampler: SamplerChain<'m>, template: impl Into<String>) -> Self {
        Self {
            ctx,
            sampler,
            template: template.into(),
            messages: Vec::new(),
            cached: Vec::new(),
        }
    }

    /// Messages so far.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Adds a system message.
    pub fn system(&mut self, content: &str) {
        self.messages.push(ChatMessage::new("system", content));
    }

    /// Adds a user message, generates the reply (calling `on_piece` as it streams) and returns it.
    pub fn ask(
        &mut self,
        content: &str,
        max_tokens: usize,
        mut on_piece: impl FnMut(&str),
    ) -> Result<String> {
        self.messages.push(ChatMessage::new("user", content));
        // Only the template's markup becomes control tokens; what users typed stays text.
        let vocab = self.ctx.model().vocab();
        let tokens = tokenize_conversation(vocab, &self.template, &self.messages, true)?;
        let common = self
            .cached
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len().saturating_sub(1));
        // Drop what diverged; recurrent memories cannot cut a tail, so start over there.
        if !self.ctx.seq_rm(Some(0), Some(common as i32), None)? {
            self.ctx.clear_memory(false);
            self.cached.clear();
        }
        let start = if self.cached.is_empty() { 0 } else { common };
        self.cached.truncate(start);
        let new = &tokens[start..];
        self.sampler.reset();
        let mut generator = Generator::new(
            &mut self.ctx,
            &mut self.sampler,
            new,
            start as i32,
            StopAt {
                max_tokens,
                stop_strings: vec![],
            },
        )?;
        let mut reply = String::new();
        while let Some(piece) = generator.next_piece() {
            let piece = piece?;
            on_piece(&piece);
            reply.push_str(&piece);
        }
        let generated = generator.decoded_tokens().to_vec();
        self.cached.extend_from_slice(new);
        self.cached.extend_from_slice(&generated);
        self.messages
            .push(ChatMessage::new("assistant", reply.clone()));
        Ok(reply)
    }
}
