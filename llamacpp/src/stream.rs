//! An async [`Stream`] of generated text for tokio users (feature `tokio`).
//!
//! Decoding blocks a thread for milliseconds to seconds per token, so it runs on tokio's
//! blocking pool ([`tokio::task::spawn_blocking`]) and hands each piece over a bounded
//! channel: a slow reader pauses generation instead of piling up text. Dropping the stream
//! closes the channel and raises the context's abort flag, so the blocking task stops at the
//! next piece (or inside a long prompt decode) and frees its context.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::generate::{Generator, StopAt};
use crate::model::Model;
use crate::params::ContextParams;
use crate::sampler::SamplerChain;
use crate::vocab::{Token, Vocab};

/// Pieces generated ahead of the reader at most.
const CHANNEL_CAPACITY: usize = 8;

/// What to generate from: text (tokenized with the model's special tokens added and
/// control-token text such as `<|im_start|>` parsed, as a rendered chat template needs) or
/// tokens as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Text to tokenize.
    Text(String),
    /// Tokens to feed as they are.
    Tokens(Vec<Token>),
}

impl From<String> for Prompt {
    fn from(s: String) -> Self {
        Prompt::Text(s)
    }
}

impl From<&str> for Prompt {
    fn from(s: &str) -> Self {
        Prompt::Text(s.to_owned())
    }
}

impl From<Vec<Token>> for Prompt {
    fn from(t: Vec<Token>) -> Self {
        Prompt::Tokens(t)
    }
}

impl From<&[Token]> for Prompt {
    fn from(t: &[Token]) -> Self {
        Prompt::Tokens(t.to_vec())
    }
}

/// How the blocking task ended (the output of [`PieceStream::take_task`]'s handle).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Tokens the generator produced.
    pub tokens: usize,
    /// Whether it stopped because the stream was dropped.
    pub cancelled: bool,
}

/// A [`Stream`] of generated text pieces, decoded on a blocking thread.
///
/// Items are non-empty, UTF-8-complete pieces; an error (bad prompt, context creation,
/// decode) arrives as one `Err` item, after which the stream ends. Dropping the stream
/// stops generation promptly.
///
/// ```no_run
/// # async fn demo() -> llamacpp::Result<()> {
/// use std::sync::Arc;
/// use llamacpp::{ContextParams, Model, SamplerChain};
/// use llamacpp::generate::StopAt;
/// use llamacpp::stream::PieceStream;
///
/// let model = Arc::new(Model::load("model.gguf", Default::default())?);
/// let stop = StopAt { max_tokens: 64, stop_strings: vec![] };
/// let mut pieces = PieceStream::generate(
///     model,
///     ContextParams::default().n_ctx(1024),
///     "Once upon a time",
///     |vocab| SamplerChain::builder(vocab).greedy().build(),
///     stop,
/// );
/// // With any `Stream` combinator crate, or by hand:
/// while let Some(piece) = std::future::poll_fn(|cx| {
///     futures_core::Stream::poll_next(std::pin::Pin::new(&mut pieces), cx)
/// }).await {
///     print!("{}", piece?);
/// }
/// # Ok(()) }
/// ```
pub struct PieceStream {
    rx: mpsc::Receiver<Result<String>>,
    task: Option<JoinHandle<StreamSummary>>,
    /// The context's abort flag when the caller gave none: raised on drop.
    abort: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for PieceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PieceStream")
            .field("task_taken", &self.task.is_none())
            .finish_non_exhaustive()
    }
}

impl PieceStream {
    /// Starts generating from `prompt` with a new context on `model` and the sampler
    /// `make_sampler` builds, until end of generation or `stop`.
    ///
    /// Must be called inside a tokio runtime; outside one the stream yields a single `Err`.
    /// Unless `ctx_params` has its own [`abort_flag`](ContextParams::abort_flag), the stream
    /// installs one to interrupt a running decode when it is dropped.
    pub fn generate<F>(
        model: Arc<Model>,
        ctx_params: ContextParams,
        prompt: impl Into<Prompt>,
        make_sampler: F,
        stop: StopAt,
    ) -> PieceStream
    where
        F: for<'v> FnOnce(Vocab<'v>) -> Result<SamplerChain<'v>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (ctx_params, abort) = if ctx_params.abort.is_some() {
            (ctx_params, None)
        } else {
            let flag = Arc::new(AtomicBool::new(false));
            (ctx_params.abort_flag(flag.clone()), Some(flag))
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let e = std::io::Error::other("PieceStream::generate needs a tokio runtime");
            // A fresh channel has room for this one item.
            let _ = tx.try_send(Err(Error::Io(e)));
            return PieceStream {
                rx,
                task: None,
                abort,
            };
        };
        let params = ctx_params;
        let prompt = prompt.into();
        let task = runtime.spawn_blocking(move || {
            let mut summary = StreamSummary::default();
            let r = run(
                &model,
                params,
                prompt,
                make_sampler,
                stop,
                &tx,
                &mut summary,
            );
            if let Err(e) = r {
                // Nobody is listening once the stream is gone: that is the normal way out.
                let _ = tx.blocking_send(Err(e));
            }
            summary.cancelled = tx.is_closed();
            summary
        });
        PieceStream {
            rx,
            task: Some(task),
            abort,
        }
    }

    /// The blocking task's handle, once: awaiting it tells when the task has ended (and its
    /// context is freed), even after the stream is dropped.
    pub fn take_task(&mut self) -> Option<JoinHandle<StreamSummary>> {
        self.task.take()
    }
}

/// The blocking task: generates and sends pieces until done, the receiver goes away, or an
/// error (returned for the caller to send).
fn run<F>(
    model: &Model,
    params: ContextParams,
    prompt: Prompt,
    make_sampler: F,
    stop: StopAt,
    tx: &mpsc::Sender<Result<String>>,
    summary: &mut StreamSummary,
) -> Result<()>
where
    F: for<'v> FnOnce(Vocab<'v>) -> Result<SamplerChain<'v>>,
{
    if tx.is_closed() {
        return Ok(());
    }
    let tokens = match prompt {
        Prompt::Text(s) => model.vocab().tokenize(&s, true, true)?,
        Prompt::Tokens(t) => t,
    };
    let mut ctx = Context::new(model, params)?;
    let mut sampler = make_sampler(model.vocab())?;
    let mut generator = Generator::new(&mut ctx, &mut sampler, &tokens, 0, stop)?;
    while let Some(piece) = generator.next_piece() {
        summary.tokens = generator.tokens().len();
        let piece = piece?;
        // Empty while a character is incomplete: nothing to tell the reader.
        if piece.is_empty() {
            continue;
        }
        if tx.blocking_send(Ok(piece)).is_err() {
            break;
        }
    }
    Ok(())
}

impl Stream for PieceStream {
    type Item = Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl Drop for PieceStream {
    fn drop(&mut self) {
        // The channel closes with `rx`; the flag also interrupts a decode already running.
        if let Some(flag) = &self.abort {
            flag.store(true, Ordering::SeqCst);
        }
    }
}
