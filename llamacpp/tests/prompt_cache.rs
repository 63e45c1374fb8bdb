//! Sequence checkpoints and the prompt cache on a hybrid (Qwen3-Next) and a dense model.

mod common;

use llamacpp::chat::{ChatMessage, tokenize_conversation};
use llamacpp::generate::{ChatSession, Generator, StopAt};
use llamacpp::prompt_cache::PromptCache;
use llamacpp::{Batch, Context, ContextParams, Model, SamplerChain, Token};

fn ctx(model: &Model) -> Context<'_> {
    Context::new(
        model,
        ContextParams::default()
            .n_ctx(1024)
            .n_batch(512)
            .n_threads(1),
    )
    .expect("context")
}

fn text_tokens(model: &Model, text: &str) -> Vec<Token> {
    model
        .vocab()
        .tokenize(text, false, false)
        .expect("tokenize")
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .expect("non-empty")
}

fn assert_same_logits(got: &[f32], want: &[f32]) {
    let e = llamacpp_ggml::nmse(got, want);
    assert!(e < 1e-6, "nmse {e}");
    assert_eq!(argmax(got), argmax(want));
}

/// Decoding A, checkpointing, decoding B, restoring and decoding C gives A+C's logits.
fn checkpoint_roundtrip(model: &Model) {
    let a = text_tokens(
        model,
        &"The quick brown fox jumps over the lazy dog. ".repeat(5),
    );
    let a = &a[..40];
    let b = text_tokens(model, "Something else entirely, which must leave no trace.");
    let c = text_tokens(model, "And then the story goes on");

    let mut fresh = ctx(model);
    fresh.decode_tokens(a).unwrap();
    fresh.decode_tokens(&c).unwrap();
    let want = fresh.logits(-1).unwrap().to_vec();

    let mut ctx = ctx(model);
    ctx.decode_tokens(a).unwrap();
    let cp = ctx.seq_checkpoint(0).unwrap();
    assert_eq!(cp.pos(), 40);
    assert_eq!(cp.seq(), 0);
    assert_eq!(cp.size() > 0, ctx.needs_checkpoints());
    ctx.decode_tokens(&b).unwrap();
    // Diverged: B's logits are not A+C's.
    assert!(llamacpp_ggml::nmse(ctx.logits(-1).unwrap(), &want) > 1e-4);
    ctx.restore_checkpoint(&cp).unwrap();
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(39));
    ctx.decode_tokens(&c).unwrap();
    assert_same_logits(ctx.logits(-1).unwrap(), &want);

    // The same checkpoint restores again (it is not consumed).
    ctx.restore_checkpoint(&cp).unwrap();
    ctx.decode_tokens(&c).unwrap();
    assert_same_logits(ctx.logits(-1).unwrap(), &want);
}

#[test]
fn checkpoint_restores_hybrid() {
    let model = common::qwen3next();
    assert!(ctx(&model).needs_checkpoints());
    checkpoint_roundtrip(&model);
}

#[test]
fn checkpoint_restores_dense() {
    let model = common::dense();
    assert!(!ctx(&model).needs_checkpoints());
    checkpoint_roundtrip(&model);
}

fn greedy(model: &Model) -> SamplerChain<'_> {
    SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .expect("sampler")
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

/// A conversation of `turns` exchanges about `topic`, ending with an assistant reply.
fn history(topic: &str, turns: usize) -> Vec<ChatMessage> {
    let mut m = vec![msg(
        "system",
        "You are a patient assistant who answers briefly.",
    )];
    for t in 0..turns {
        m.push(msg(
            "user",
            &format!("Question {t} about {topic}: what comes after step {t}?"),
        ));
        m.push(msg(
            "assistant",
            &format!(
                "After step {t} of {topic} comes step {}, then we rest.",
                t + 1
            ),
        ));
    }
    m
}

fn prompt(model: &Model, messages: &[ChatMessage]) -> Vec<Token> {
    tokenize_conversation(model.vocab(), "chatml", messages, true).expect("template")
}

/// `n` greedy tokens after the logits of the last decode, decoding each.
fn greedy_tokens(ctx: &mut Context<'_>, pos: usize, n: usize) -> Vec<Token> {
    let model = ctx.model();
    let mut sampler = greedy(model);
    let stop = StopAt {
        max_tokens: n + 1,
        ..Default::default()
    };
    let mut g = Generator::resume(ctx, &mut sampler, pos as i32, stop);
    while let Some(p) = g.next_piece() {
        p.unwrap();
    }
    g.decoded_tokens().to_vec()
}

fn fresh_logits_and_tokens(model: &Model, p: &[Token], n: usize) -> (Vec<f32>, Vec<Token>) {
    let mut fresh = ctx(model);
    let mut b = Batch::from_tokens(p, 0, 0).unwrap();
    fresh.decode(&mut b).unwrap();
    let logits = fresh.logits(-1).unwrap().to_vec();
    let toks = greedy_tokens(&mut fresh, p.len(), n);
    (logits, toks)
}

/// A prompt, a reply, then the same prompt with its last user message edited: the cache
/// restarts at that message (from a checkpoint on the hybrid model), and the logits and greedy
/// continuation equal a fresh context's over the whole edited prompt.
fn edited_turn(model: &Model) {
    let mut ctx = ctx(model);
    let mut cache = PromptCache::new(64 << 20).checkpoint_every(0);
    let mut msgs = history("baking", 3);
    msgs.push(msg("user", "And what about the oven temperature?"));
    let p1 = prompt(model, &msgs);
    let before =
        tokenize_conversation(model.vocab(), "chatml", &history("baking", 3), false).unwrap();
    let start = before.len();
    assert_eq!(p1[..start], before[..], "the history is a token prefix");

    assert_eq!(cache.prepare(&mut ctx, &p1).unwrap(), 0);
    cache.feed_with_marks(&mut ctx, &p1, &[start]).unwrap();
    let generated = greedy_tokens(&mut ctx, p1.len(), 6);
    cache.record_generated(&generated);
    assert_eq!(cache.tokens().len(), p1.len() + generated.len());

    msgs.last_mut().unwrap().content = "And how long should it cool?".into();
    let p2 = prompt(model, &msgs);
    ctx.reset_perf();
    let fed_before = cache.stats().tokens_fed;
    let reused = cache.prepare(&mut ctx, &p2).unwrap();
    let common = p1.iter().zip(&p2).take_while(|(a, b)| a == b).count();
    if ctx.needs_checkpoints() {
        // Rolled back to the checkpoint at the start of the last message.
        assert_eq!(reused, start);
        assert_eq!(cache.stats().checkpoint_restores, 1);
    } else {
        assert_eq!(reused, common);
    }
    assert!(reused > p2.len() / 2, "reused {reused} of {}", p2.len());
    cache.feed(&mut ctx, &p2[reused..]).unwrap();
    assert_eq!(
        cache.stats().tokens_fed - fed_before,
        (p2.len() - reused) as u64
    );
    // Only the new part was evaluated (the last token may go alone, counted as n_eval).
    let perf = ctx.perf();
    assert!(
        (perf.n_p_eval + perf.n_eval) as usize <= p2.len() - reused + 1,
        "{perf:?}"
    );
    let got = ctx.logits(-1).unwrap().to_vec();
    let got_tokens = greedy_tokens(&mut ctx, p2.len(), 6);

    // A fresh context fed the same token ranges per decode (the cache decodes the last token
    // alone where it checkpoints): the same numbers.
    let last = p2.len() - 1;
    let cuts = if ctx.needs_checkpoints() {
        vec![reused, last]
    } else {
        vec![reused]
    };
    assert_same_logits(&got, &fresh_chunked(model, &p2, &cuts));
    // A fresh context fed the whole prompt at once: the same up to batching noise (other
    // batch sizes round differently, NMSE ~1e-4 on these models), the same greedy reply.
    let (want, want_tokens) = fresh_logits_and_tokens(model, &p2, 6);
    let e = llamacpp_ggml::nmse(&got, &want);
    assert!(e < 1e-3, "nmse {e}");
    assert_eq!(argmax(&got), argmax(&want));
    assert_eq!(got_tokens, want_tokens);
}

/// The last logits after decoding `p` in one decode per range between `cuts`.
fn fresh_chunked(model: &Model, p: &[Token], cuts: &[usize]) -> Vec<f32> {
    let mut fresh = ctx(model);
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < p.len()));
    bounds.push(p.len());
    for w in bounds.windows(2) {
        let mut b = Batch::from_tokens(&p[w[0]..w[1]], w[0] as i32, 0).unwrap();
        fresh.decode(&mut b).unwrap();
    }
    fresh.logits(-1).unwrap().to_vec()
}

#[test]
fn edited_turn_hybrid() {
    edited_turn(&common::qwen3next());
}

#[test]
fn edited_turn_dense() {
    edited_turn(&common::dense());
}

/// `ChatSession::edit_last` and `regenerate` re-read only the last turn (or token), and reply
/// what a fresh session replies to the same messages.
fn session_edit_and_regenerate(model: &Model) {
    let mut chat = ChatSession::new(ctx(model), greedy(model), "chatml");
    chat.system("You are terse.");
    chat.ask("Name a colour of the sea.", 8, |_| {}).unwrap();
    chat.ask("Name a colour of the sky at night.", 8, |_| {})
        .unwrap();
    let full = prompt(model, chat.messages()).len();

    chat.context_mut().reset_perf();
    let before = chat.cache_stats();
    let edited = chat
        .edit_last("Name a colour of grass in summer.", 8, |_| {})
        .unwrap();
    let after = chat.cache_stats();
    let fed = after.tokens_fed - before.tokens_fed;
    // The last user turn and the assistant header, not the conversation.
    assert!(fed > 0 && (fed as usize) < full / 2, "fed {fed} of ~{full}");
    let perf = chat.context().perf();
    assert!((perf.n_p_eval as u64) <= fed, "{perf:?}");
    if chat.context().needs_checkpoints() {
        assert_eq!(after.checkpoint_restores, before.checkpoint_restores + 1);
    }

    let mut fresh = ChatSession::new(ctx(model), greedy(model), "chatml");
    let mut msgs = chat.messages().to_vec();
    msgs.pop();
    fresh.set_messages(msgs);
    assert_eq!(fresh.regenerate(8, |_| {}).unwrap(), edited);

    // Regenerate: only the prompt's last token is decoded again, and greedy gives the same.
    let before = chat.cache_stats();
    let again = chat.regenerate(8, |_| {}).unwrap();
    assert_eq!(again, edited);
    let after = chat.cache_stats();
    assert_eq!(after.tokens_fed - before.tokens_fed, 1);
    assert_eq!(chat.messages().len(), 5);
}

#[test]
fn session_edit_and_regenerate_hybrid() {
    session_edit_and_regenerate(&common::qwen3next());
}

#[test]
fn session_edit_and_regenerate_dense() {
    session_edit_and_regenerate(&common::dense());
}

/// Two conversations in turn: each switch back restores the stored one, re-reading only its
/// new turn, and replies equal a fresh session's.
fn alternating(model: &Model) {
    let mut chat = ChatSession::new(ctx(model), greedy(model), "chatml");
    let a = history("gardening", 2);
    let b = history("sailing", 2);
    chat.set_messages(a);
    chat.ask("What about roses?", 6, |_| {}).unwrap();
    let a = chat.set_messages(b);
    chat.ask("What about knots?", 6, |_| {}).unwrap();
    let s0 = chat.cache_stats();
    assert_eq!(s0.conversation_restores, 0);
    assert_eq!(s0.conversations, 1);

    let b = chat.set_messages(a);
    let reply_a = chat.ask("And tulips?", 6, |_| {}).unwrap();
    let s1 = chat.cache_stats();
    assert_eq!(s1.conversation_restores, 1);
    let reused = s1.tokens_reused - s0.tokens_reused;
    let a_len = prompt(model, chat.messages()).len() as u64;
    assert!(reused > a_len / 2, "reused {reused} of {a_len}");

    let mut msgs = chat.set_messages(b);
    chat.ask("And sails?", 6, |_| {}).unwrap();
    let s2 = chat.cache_stats();
    assert_eq!(s2.conversation_restores, 2);
    // Every prompt after the first two (new conversations) hit; on the dense model the second
    // also reused the shared system prompt.
    let new_conversation_hits = u64::from(!chat.context().needs_checkpoints());
    assert_eq!(s2.hits, 2 + new_conversation_hits);

    msgs.pop();
    let mut fresh = ChatSession::new(ctx(model), greedy(model), "chatml");
    fresh.set_messages(msgs);
    assert_eq!(fresh.regenerate(6, |_| {}).unwrap(), reply_a);
}

#[test]
fn alternating_conversations_hybrid() {
    alternating(&common::qwen3next());
}

#[test]
fn alternating_conversations_dense() {
    alternating(&common::dense());
}

/// Under a bound of about two stored conversations, a third one evicts the least recently
/// used, and the bytes held never exceed the bound.
fn bounded(model: &Model) {
    // The size of one stored conversation, from an unbounded run.
    let probe = {
        let mut chat = ChatSession::new(ctx(model), greedy(model), "chatml");
        chat.set_messages(history("topic A", 1));
        chat.ask("Go on.", 4, |_| {}).unwrap();
        chat.set_messages(history("topic B", 1));
        chat.ask("Go on.", 4, |_| {}).unwrap();
        chat.cache_stats().bytes
    };
    assert!(probe > 0);
    let bound = probe * 5 / 2;
    let cache = PromptCache::new(bound).checkpoint_every(0);
    let mut chat = ChatSession::new(ctx(model), greedy(model), "chatml").with_prompt_cache(cache);
    let mut convs: Vec<Vec<ChatMessage>> = ["topic A", "topic B", "topic C", "topic D"]
        .iter()
        .map(|t| history(t, 1))
        .collect();
    let turn = |chat: &mut ChatSession<'_>, convs: &mut Vec<Vec<ChatMessage>>, i: usize| {
        chat.set_messages(std::mem::take(&mut convs[i]));
        chat.ask("Go on.", 4, |_| {}).unwrap();
        convs[i] = chat.messages().to_vec();
        let s = chat.cache_stats();
        assert!(s.bytes <= bound, "{} > {bound}", s.bytes);
        s
    };
    for i in 0..3 {
        turn(&mut chat, &mut convs, i); // A, B, C: A and B stored
    }
    let s = turn(&mut chat, &mut convs, 0); // A again: restored; C stored
    assert_eq!(s.conversation_restores, 1);
    assert_eq!(s.evictions, 0);
    let s = turn(&mut chat, &mut convs, 3); // D: A stored, B (least recent) evicted
    assert!(s.evictions >= 1);
    assert!(s.conversations <= 2);
    let s = turn(&mut chat, &mut convs, 1); // B: gone, a miss
    assert_eq!(s.conversation_restores, 1);
    let s = turn(&mut chat, &mut convs, 0); // A: still there
    assert_eq!(s.conversation_restores, 2);
}

#[test]
fn memory_bound_evicts_lru_hybrid() {
    bounded(&common::qwen3next());
}

#[test]
fn memory_bound_evicts_lru_dense() {
    bounded(&common::dense());
}

#[test]
fn other_contexts_are_refused() {
    let model = common::qwen3next();
    let mut one = ctx(&model);
    let mut two = ctx(&model);
    let p = text_tokens(&model, "A few tokens to hold in memory for the test.");
    one.decode_tokens(&p).unwrap();
    two.decode_tokens(&p).unwrap();
    let cp = one.seq_checkpoint(0).unwrap();
    assert!(matches!(
        two.restore_checkpoint(&cp),
        Err(llamacpp::Error::Checkpoint(_))
    ));
    // Refused without touching the other context's memory.
    assert_eq!(two.seq_pos_max(0).unwrap(), Some(p.len() as i32 - 1));
    // A sequence that no longer reaches the checkpoint is refused too.
    one.clear_memory(false);
    assert!(one.restore_checkpoint(&cp).is_err());

    let mut cache = PromptCache::new(1 << 20);
    cache.prepare(&mut one, &p).unwrap();
    assert!(matches!(
        cache.prepare(&mut two, &p),
        Err(llamacpp::Error::Checkpoint(_))
    ));
    cache.clear();
    assert_eq!(cache.prepare(&mut two, &p).unwrap(), 0);
}
