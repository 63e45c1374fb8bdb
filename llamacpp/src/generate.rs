//! High level: a streaming text generator and a chat session that keeps its
//! KV cache between turns.

use crate::batch::Batch;
use crate::chat::{ChatMessage, ChatRequest, ChatTemplate, Tool, tokenize_chat};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::prompt_cache::{PromptCache, PromptCacheStats};
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
///
/// Every position must fit in an `i32`: a run that would pass `i32::MAX` is refused
/// before anything is decoded.
pub fn feed(ctx: &mut Context<'_>, tokens: &[Token], start: i32) -> Result<()> {
    end_position(start, tokens.len())?;
    let n_batch = ctx.n_batch().max(1) as usize;
    for (i, chunk) in tokens.chunks(n_batch).enumerate() {
        // In range: checked above for the whole run.
        let at = i64::from(start) + (i * n_batch) as i64;
        let mut b = Batch::from_tokens(chunk, at as i32, 0)?;
        ctx.decode(&mut b)?;
    }
    Ok(())
}

/// The position after `n` tokens from `start` (`start + n`), or `Err` when the run does
/// not fit in non-negative `i32` positions.
fn end_position(start: i32, n: usize) -> Result<i64> {
    let end = i64::from(start).saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
    if start < 0 || end - 1 > i64::from(i32::MAX) {
        return Err(Error::OutOfRange {
            what: "position",
            value: end.saturating_sub(1),
            expected: format!("0..={} (positions are i32)", i32::MAX),
        });
    }
    Ok(end)
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
        // The next token's position must exist too.
        let next = end_position(pos, prompt.len() + 1)? - 1;
        feed(ctx, prompt, pos)?;
        Ok(Self::resume(ctx, sampler, next as i32, stop))
    }

    /// Prepares to generate after a prompt that is already decoded (by
    /// [`PromptCache::feed`](crate::prompt_cache::PromptCache::feed), say): `pos` is the
    /// sequence's length, and the last decode must have computed logits for its last token
    /// (else the first [`next_piece`](Self::next_piece) reports [`Error::NoOutput`]).
    pub fn resume(
        ctx: &'c mut Context<'m>,
        sampler: &'c mut SamplerChain<'m>,
        pos: i32,
        stop: StopAt,
    ) -> Self {
        Generator {
            ctx,
            sampler,
            decoder: Utf8Decoder::default(),
            stop,
            pos,
            tokens: Vec::new(),
            n_decoded: 0,
            text: String::new(),
            done: false,
        }
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
        if vocab.is_eog(t) || self.tokens.len() + 1 >= self.stop.max_tokens.max(1) {
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
            // The token after this one needs a position too.
            let Some(next) = self.pos.checked_add(1) else {
                self.done = true;
                return Err(Error::OutOfRange {
                    what: "position",
                    value: i64::from(self.pos) + 1,
                    expected: format!("<= {} (positions are i32)", i32::MAX),
                });
            };
            let mut b = Batch::new(1, 1)?;
            b.add(t, self.pos, &[0], true)?;
            self.ctx.decode(&mut b)?;
            self.pos = next;
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

/// The memory a [`ChatSession`]'s prompt cache may hold by default (checkpoints and other
/// conversations' states), in bytes.
pub const DEFAULT_CHAT_CACHE_BYTES: usize = 256 << 20;

/// A conversation whose memory is kept between turns: each turn decodes only what memory does
/// not already hold.
///
/// A [`PromptCache`] finds it: the new turn after the previous one, an edited last turn
/// ([`edit_last`](Self::edit_last)) or a regenerated reply ([`regenerate`](Self::regenerate))
/// from the nearest checkpoint before the change (on recurrent and hybrid models too), and
/// another conversation ([`set_messages`](Self::set_messages)) from its stored state.
///
/// ```no_run
/// use llamacpp::generate::ChatSession;
/// # use llamacpp::{Context, ContextParams, Model, SamplerChain};
/// # let model = Model::load("m.gguf", Default::default())?;
/// let ctx = Context::new(&model, ContextParams::default().n_ctx(4096))?;
/// let sampler = SamplerChain::builder(model.vocab()).greedy().build()?;
/// let mut chat = ChatSession::with_model_template(ctx, sampler)?; // the model's jinja template
/// chat.ask("Name a colour.", 32, |p| print!("{p}"))?;
/// chat.edit_last("Name a fruit.", 32, |p| print!("{p}"))?; // re-reads only the last turn
/// chat.regenerate(32, |p| print!("{p}"))?; // another reply to the same question
/// let first = chat.set_messages(Vec::new()); // a second conversation
/// chat.ask("Hello?", 32, |p| print!("{p}"))?;
/// chat.set_messages(first); // back to the first: its memory was kept
/// println!("{:?}", chat.cache_stats());
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub struct ChatSession<'m> {
    ctx: Context<'m>,
    sampler: SamplerChain<'m>,
    template: ChatTemplate,
    tools: Vec<Tool>,
    kwargs: serde_json::Map<String, serde_json::Value>,
    messages: Vec<ChatMessage>,
    cache: PromptCache,
}

impl<'m> ChatSession<'m> {
    /// A session over `ctx` using `template` (a [`ChatTemplate`], or a built-in template's
    /// name such as `"chatml"`), caching up to [`DEFAULT_CHAT_CACHE_BYTES`] in sequence 0.
    pub fn new(
        ctx: Context<'m>,
        sampler: SamplerChain<'m>,
        template: impl Into<ChatTemplate>,
    ) -> Self {
        Self {
            ctx,
            sampler,
            template: template.into(),
            tools: Vec::new(),
            kwargs: serde_json::Map::new(),
            messages: Vec::new(),
            cache: PromptCache::new(DEFAULT_CHAT_CACHE_BYTES),
        }
    }

    /// A session with the model's own chat template ([`ChatTemplate::from_model`]: its jinja
    /// `tokenizer.chat_template`, rendered as the model was trained with).
    pub fn with_model_template(ctx: Context<'m>, sampler: SamplerChain<'m>) -> Result<Self> {
        let template = ChatTemplate::from_model(ctx.model())?;
        Ok(Self::new(ctx, sampler, template))
    }

    /// The tools the template lists for the model (jinja templates only; a built-in template
    /// refuses tools with an error at the next reply). Parse replies with
    /// [`parse_tool_calls`](crate::chat::parse_tool_calls), answer with
    /// [`push`](Self::push)`(`[`ChatMessage::tool_result`]`)` and [`respond`](Self::respond).
    pub fn set_tools(&mut self, tools: Vec<Tool>) {
        self.tools = tools;
    }

    /// Sets a template variable (e.g. `enable_thinking`), passed to every rendering.
    pub fn set_template_kwarg(&mut self, key: impl Into<String>, value: serde_json::Value) {
        self.kwargs.insert(key.into(), value);
    }

    /// Appends a message as is (a tool result, an assistant message with tool calls, ...).
    pub fn push(&mut self, message: ChatMessage) {
        self.messages.push(message);
    }

    /// Generates the assistant's reply to the messages so far (e.g. after a tool result) and
    /// appends it.
    pub fn respond(&mut self, max_tokens: usize, on_piece: impl FnMut(&str)) -> Result<String> {
        self.reply(max_tokens, on_piece)
    }

    /// Uses `cache` (its bound, checkpoint spacing and sequence) instead of the default one.
    pub fn with_prompt_cache(mut self, cache: PromptCache) -> Self {
        self.cache = cache;
        self
    }

    /// What the prompt cache did and holds.
    pub fn cache_stats(&self) -> PromptCacheStats {
        self.cache.stats()
    }

    /// The context (for its counters, e.g. [`Context::perf`]).
    pub fn context(&self) -> &Context<'m> {
        &self.ctx
    }

    /// The context, mutably. Changing the cached sequence's memory makes the cache start over
    /// (see [`PromptCache`]).
    pub fn context_mut(&mut self) -> &mut Context<'m> {
        &mut self.ctx
    }

    /// Messages so far.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Switches to another conversation and returns the current one; the cache keeps the
    /// current one's memory, so switching back re-reads only what changed.
    pub fn set_messages(&mut self, messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
        std::mem::replace(&mut self.messages, messages)
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
        on_piece: impl FnMut(&str),
    ) -> Result<String> {
        self.messages.push(ChatMessage::new("user", content));
        self.reply(max_tokens, on_piece)
    }

    /// Replaces the last user message with `content`, drops what followed it, and generates a
    /// new reply. Errors when there is no user message.
    pub fn edit_last(
        &mut self,
        content: &str,
        max_tokens: usize,
        on_piece: impl FnMut(&str),
    ) -> Result<String> {
        let last_user =
            self.messages
                .iter()
                .rposition(|m| m.role == "user")
                .ok_or(Error::OutOfRange {
                    what: "user messages",
                    value: 0,
                    expected: ">= 1 to edit".into(),
                })?;
        self.messages.truncate(last_user + 1);
        self.messages[last_user].content = content.to_string();
        self.reply(max_tokens, on_piece)
    }

    /// Drops the last assistant reply (if the conversation ends with one) and generates another.
    /// Errors when there are no messages.
    pub fn regenerate(&mut self, max_tokens: usize, on_piece: impl FnMut(&str)) -> Result<String> {
        if self.messages.last().is_some_and(|m| m.role == "assistant") {
            self.messages.pop();
        }
        if self.messages.is_empty() {
            return Err(Error::OutOfRange {
                what: "messages",
                value: 0,
                expected: ">= 1 to reply to".into(),
            });
        }
        self.reply(max_tokens, on_piece)
    }

    /// The prompt for the next reply: the one place the template is applied. Only the
    /// template's markup becomes control tokens; what users typed stays text.
    fn prompt(&self) -> Result<Vec<Token>> {
        self.tokenize(&self.messages, true)
    }

    fn tokenize(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<Token>> {
        let req = ChatRequest {
            messages: messages.to_vec(),
            tools: self.tools.clone(),
            kwargs: self.kwargs.clone(),
            ..ChatRequest::default()
        }
        .add_generation_prompt(add_generation_prompt);
        tokenize_chat(self.ctx.model().vocab(), &self.template, &req)
    }

    /// Where the last message starts in `tokens` (the prompt), on models whose memory needs
    /// checkpoints to roll back: a checkpoint there lets an edit of that message restart there.
    /// A template that cannot render the shorter conversation just gives no position.
    fn last_message_start(&self, tokens: &[Token]) -> Option<usize> {
        let n = self.messages.len();
        if n < 2 || !self.ctx.needs_checkpoints() {
            return None;
        }
        let before = self.tokenize(&self.messages[..n - 1], false).ok()?;
        let common = before
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        (common > 0).then_some(common)
    }

    /// Generates the assistant's reply to the messages so far and appends it.
    fn reply(&mut self, max_tokens: usize, mut on_piece: impl FnMut(&str)) -> Result<String> {
        let tokens = self.prompt()?;
        let cached = self.cache.prepare(&mut self.ctx, &tokens)?;
        let marks: Vec<usize> = self.last_message_start(&tokens).into_iter().collect();
        self.cache
            .feed_with_marks(&mut self.ctx, &tokens[cached..], &marks)?;
        self.sampler.reset();
        let stop = StopAt {
            max_tokens,
            stop_strings: vec![],
        };
        let mut generator =
            Generator::resume(&mut self.ctx, &mut self.sampler, tokens.len() as i32, stop);
        let mut reply = String::new();
        let mut outcome = Ok(());
        while let Some(piece) = generator.next_piece() {
            match piece {
                Ok(piece) => {
                    on_piece(&piece);
                    reply.push_str(&piece);
                }
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // Recorded even after an error, so the cache knows every token in memory.
        let generated = generator.decoded_tokens().to_vec();
        self.cache.record_generated(&generated);
        outcome?;
        self.messages
            .push(ChatMessage::new("assistant", reply.clone()));
        Ok(reply)
    }
}
