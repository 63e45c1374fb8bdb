//! `PieceStream`: the same text as the synchronous generator, prompt cancellation on drop,
//! errors as items.
#![cfg(feature = "tokio")]

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use llamacpp::generate::{Generator, StopAt};
use llamacpp::stream::{PieceStream, Prompt};
use llamacpp::{Context, ContextParams, Error, Model, Result, SamplerChain, Vocab};

const PROMPT: &str = "<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n";

fn params() -> ContextParams {
    ContextParams::default().n_ctx(512).n_threads(1)
}

fn stop(max_tokens: usize) -> StopAt {
    StopAt {
        max_tokens,
        stop_strings: vec![],
    }
}

fn greedy(vocab: Vocab<'_>) -> Result<SamplerChain<'_>> {
    SamplerChain::builder(vocab).greedy().build()
}

/// Greedy, but end-of-generation tokens are never picked: generation only ends by count.
fn greedy_no_eog(vocab: Vocab<'_>) -> Result<SamplerChain<'_>> {
    let bans: Vec<_> = (0..vocab.n_tokens())
        .filter_map(|id| vocab.token(id).ok())
        .filter(|&t| vocab.is_eog(t))
        .map(|t| (t, f32::NEG_INFINITY))
        .collect();
    assert!(!bans.is_empty());
    SamplerChain::builder(vocab)
        .logit_bias(&bans)
        .greedy()
        .build()
}

async fn next(s: &mut PieceStream) -> Option<Result<String>> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

async fn collect(mut s: PieceStream) -> Result<String> {
    let mut out = String::new();
    while let Some(p) = next(&mut s).await {
        let p = p?;
        assert!(!p.is_empty(), "empty pieces are not sent");
        out.push_str(&p);
    }
    Ok(out)
}

fn sync_text(model: &Model, prompt: &str, max_tokens: usize) -> String {
    let mut ctx = Context::new(model, params()).unwrap();
    let mut sampler = greedy(model.vocab()).unwrap();
    let tokens = model.vocab().tokenize(prompt, true, true).unwrap();
    Generator::new(&mut ctx, &mut sampler, &tokens, 0, stop(max_tokens))
        .unwrap()
        .collect_text()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_text_equals_the_generator() {
    for model in [common::dense(), common::qwen3next()] {
        let want = sync_text(&model, PROMPT, 32);
        assert!(!want.is_empty());
        let model = Arc::new(model);
        let s = PieceStream::generate(model.clone(), params(), PROMPT, greedy, stop(32));
        assert_eq!(collect(s).await.unwrap(), want);
        // The same prompt given as tokens.
        let tokens = model.vocab().tokenize(PROMPT, true, true).unwrap();
        let s = PieceStream::generate(
            model.clone(),
            params(),
            Prompt::Tokens(tokens),
            greedy,
            stop(32),
        );
        assert_eq!(collect(s).await.unwrap(), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_stops_generation() {
    let model = Arc::new(common::dense());
    let max_tokens = 3000;
    let p = ContextParams::default().n_ctx(4096).n_threads(1);
    let mut s = PieceStream::generate(model, p, PROMPT, greedy_no_eog, stop(max_tokens));
    let task = s.take_task().expect("task handle");
    assert!(s.take_task().is_none());
    for _ in 0..2 {
        next(&mut s).await.unwrap().unwrap();
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !task.is_finished() {
        assert!(Instant::now() < deadline, "the blocking task did not stop");
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(5));
    }
    let summary = task.await.unwrap();
    assert!(summary.cancelled, "{summary:?}");
    // Two pieces read, at most a channel's worth ahead, a few more while the drop landed.
    assert!(summary.tokens < 40, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncancelled_runs_report_their_tokens() {
    let model = Arc::new(common::dense());
    let mut s = PieceStream::generate(model, params(), PROMPT, greedy_no_eog, stop(10));
    let task = s.take_task().unwrap();
    let text = collect(s).await.unwrap();
    assert!(!text.is_empty());
    let summary = task.await.unwrap();
    assert!(!summary.cancelled);
    assert!((10..=11).contains(&summary.tokens), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_arrive_as_items() {
    let model = Arc::new(common::dense());
    // An empty prompt.
    let empty = Prompt::Tokens(vec![]);
    let mut s = PieceStream::generate(model.clone(), params(), empty, greedy, stop(8));
    assert!(matches!(next(&mut s).await, Some(Err(Error::EmptyBatch))));
    assert!(next(&mut s).await.is_none());
    // A sampler that cannot be built.
    let mut s = PieceStream::generate(
        model.clone(),
        params(),
        PROMPT,
        |v| {
            SamplerChain::builder(v)
                .grammar("root ::= (", "root")
                .build()
        },
        stop(8),
    );
    assert!(matches!(next(&mut s).await, Some(Err(Error::Grammar(_)))));
    assert!(next(&mut s).await.is_none());
    // A context that cannot be created (invalid parameters).
    let bad = ContextParams::default().n_ctx(512).n_seq_max(100_000);
    let mut s = PieceStream::generate(model.clone(), bad, PROMPT, greedy, stop(8));
    assert!(matches!(next(&mut s).await, Some(Err(_))));
    assert!(next(&mut s).await.is_none());
    // A prompt longer than the context: the decode fails.
    let t = model.vocab().token(300).unwrap();
    let mut s = PieceStream::generate(model.clone(), params(), vec![t; 600], greedy, stop(8));
    let e = next(&mut s).await;
    assert!(
        matches!(e, Some(Err(Error::NoKvSlot | Error::OutOfRange { .. }))),
        "{e:?}"
    );
    assert!(next(&mut s).await.is_none());
}

#[test]
fn outside_a_runtime_is_an_error_item() {
    let model = Arc::new(common::dense());
    let mut s = PieceStream::generate(model, params(), PROMPT, greedy, stop(8));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut s).poll_next(&mut cx) {
        Poll::Ready(Some(Err(Error::Io(e)))) => assert!(e.to_string().contains("tokio")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Pin::new(&mut s).poll_next(&mut cx),
        Poll::Ready(None)
    ));
}
