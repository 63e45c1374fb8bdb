//! Time to first token of an edited last turn on the synthetic Qwen3-Next (hybrid: recurrent
//! and attention layers) with a ~4k-token chat history, n_ctx 8192:
//!
//! - `reread`: what `ChatSession` did before the prompt cache: the recurrent state cannot drop
//!   the old last turn, so memory is cleared and the whole conversation decoded again;
//! - `prompt_cache`: `ChatSession::edit_last`, which restores the checkpoint taken where the
//!   last user message starts and decodes only that message and the assistant header.
//!
//! Each iteration renders and tokenizes the conversation, prepares memory, decodes the prompt
//! and samples one token (greedy). The edits alternate between two texts, so every iteration
//! diverges inside the last message. `cargo bench -p llamacpp --bench prompt_cache` prints
//! criterion's estimates, then a paired measurement ([`PAIRED`] iterations of each, in turn)
//! with both medians and their ratio. `LLAMACPP_BENCH_THREADS` sets the threads (default 1).

use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use llamacpp::chat::{ChatMessage, tokenize_conversation};
use llamacpp::generate::{ChatSession, Generator, StopAt, feed};
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain};
use llamacpp_synth::Preset;

const N_CTX: u32 = 8192;
const HISTORY_TOKENS: usize = 4096;
const PAIRED: usize = 15;
const EDITS: [&str; 2] = [
    "Thanks. Could you sum the whole plan up in three short steps?",
    "Thanks. Could you list what to buy before we start, briefly?",
];

fn threads() -> i32 {
    std::env::var("LLAMACPP_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

fn context(model: &Model) -> Context<'_> {
    Context::new(
        model,
        ContextParams::default()
            .n_ctx(N_CTX)
            .n_batch(2048)
            .n_threads(threads()),
    )
    .expect("context")
}

fn greedy(model: &Model) -> SamplerChain<'_> {
    SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .expect("sampler")
}

/// Turns of chat until the rendered conversation reaches [`HISTORY_TOKENS`], then a last
/// user message (the one that gets edited).
fn conversation(model: &Model) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::new(
        "system",
        "You are a careful assistant who plans garden work with the user.",
    )];
    let beds = ["tomatoes", "beans", "lettuce", "carrots", "herbs", "onions"];
    for turn in 0.. {
        let bed = beds[turn % beds.len()];
        messages.push(ChatMessage::new(
            "user",
            format!("Day {turn}: the {bed} bed looks dry and a little crowded. What now?"),
        ));
        messages.push(ChatMessage::new(
            "assistant",
            format!(
                "On day {turn}, water the {bed} early, thin them to a hand's width apart, \
                 and mulch lightly so the soil keeps its moisture until evening."
            ),
        ));
        let n = tokenize_conversation(model.vocab(), "chatml", &messages, false)
            .expect("template")
            .len();
        if n >= HISTORY_TOKENS {
            break;
        }
    }
    messages.push(ChatMessage::new("user", EDITS[1]));
    messages
}

/// The old way: clear memory, decode the whole prompt, sample the first token.
fn reread<'m>(ctx: &mut Context<'m>, sampler: &mut SamplerChain<'m>, messages: &[ChatMessage]) {
    let prompt =
        tokenize_conversation(ctx.model().vocab(), "chatml", messages, true).expect("template");
    ctx.clear_memory(false);
    feed(ctx, &prompt, 0).expect("feed");
    sampler.reset();
    let stop = StopAt {
        max_tokens: 1,
        ..Default::default()
    };
    let mut g = Generator::resume(ctx, sampler, prompt.len() as i32, stop);
    black_box(g.next_piece());
}

fn main() {
    llamacpp::backend::set_logging(false);
    let path = llamacpp_synth::tiny_model_path(Preset::Qwen3NextTiny);
    let model = Model::load(&path, ModelParams::default()).expect("model");
    let mut messages = conversation(&model);
    let n_prompt = tokenize_conversation(model.vocab(), "chatml", &messages, true)
        .expect("template")
        .len();

    let mut old_ctx = context(&model);
    let mut old_sampler = greedy(&model);
    let mut chat = ChatSession::new(context(&model), greedy(&model), "chatml");
    chat.set_messages(messages.clone());
    chat.regenerate(1, |_| {}).expect("first reply"); // fills the cache once
    let mut edit = 0usize;
    let mut cached_step = |chat: &mut ChatSession<'_>| {
        edit += 1;
        black_box(chat.edit_last(EDITS[edit % 2], 1, |_| {}).expect("edit"));
    };
    let mut old_edit = 0usize;
    let mut old_step = |messages: &mut Vec<ChatMessage>| {
        old_edit += 1;
        if let Some(last) = messages.last_mut() {
            last.content = EDITS[old_edit % 2].into();
        }
        reread(&mut old_ctx, &mut old_sampler, messages);
    };

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut g = c.benchmark_group(format!("ttft_edited_turn/qwen3next-tiny/{n_prompt}tok"));
    g.bench_function("reread", |b| b.iter(|| old_step(&mut messages)));
    g.bench_function("prompt_cache", |b| b.iter(|| cached_step(&mut chat)));
    g.finish();

    // Paired: one of each in turn, so both see the same machine state.
    let (mut old_ms, mut new_ms) = (Vec::new(), Vec::new());
    for _ in 0..PAIRED {
        let t = Instant::now();
        old_step(&mut messages);
        old_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        cached_step(&mut chat);
        new_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (old, new) = (median(old_ms), median(new_ms));
    let stats = chat.cache_stats();
    println!(
        "\nedited last turn, {n_prompt}-token prompt, {} thread(s), median of {PAIRED}:",
        threads()
    );
    println!("  reread (whole conversation)  {old:>9.2} ms");
    println!("  prompt cache (checkpoint)    {new:>9.2} ms");
    println!("  speed-up                     {:>9.1}x", old / new);
    println!("  cache: {stats:?}");
    c.final_summary();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
