//! `Model::probe`: load a file nobody vouches for in a child process first.
//!
//! The checks in `model_check` refuse every malformed file we know of, but llama.cpp has
//! more abort sites than any list. The probe forks, and the child does what an application
//! does first (load, tokenize, decode a short prompt, read the logits) while the parent
//! waits. Whatever slips past the checks (an abort, a segfault, a hang, a memory
//! blow-up) ends the child; the parent gets an `Err` that says how and carries the tail
//! of what the child wrote to standard error.
//!
//! Why fork and not a helper executable: a library cannot ship one, and re-running the
//! application's own binary needs its `main` to cooperate. A fork of a multithreaded
//! process is only a hazard for the child (a lock another thread held at the fork stays
//! held there), and the child is exactly the process we are prepared to lose: the parent
//! itself only reads two pipes and waits. Such a stall ends as [`ProbeFailure::TimedOut`].

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Model, Result};

/// What [`Model::probe`] does in the child process.
///
/// ```
/// use std::time::Duration;
/// let options = llamacpp::ProbeOptions::default()
///     .timeout(Duration::from_secs(30))
///     .memory_limit(Some(4 << 30))
///     .prompt("The capital of France is");
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    timeout: Duration,
    memory_limit: Option<u64>,
    prompt: String,
}

impl Default for ProbeOptions {
    /// Two minutes, the file's size plus 8 GiB of new address space, and a short English
    /// prompt.
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(120),
            memory_limit: None,
            prompt: "Hello world".into(),
        }
    }
}

impl ProbeOptions {
    /// How long the child may take for everything before it is killed.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// How much address space the child may map beyond what it inherits from this process,
    /// in bytes (an `RLIMIT_AS` on Linux; elsewhere no limit is set). `None` (the default)
    /// means the file's size plus 8 GiB, so a small file that makes llama.cpp allocate
    /// gigabytes fails in the child instead of exhausting the machine.
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The text the child tokenizes (with special tokens) and decodes; at most 64 of its
    /// tokens are decoded. An empty prompt, or a model without a tokenizer, decodes token 0.
    pub fn prompt(mut self, text: &str) -> Self {
        self.prompt = text.into();
        self
    }
}

/// What the child found in a file that passed the probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProbeReport {
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// Parameters, as llama.cpp counts them.
    pub n_params: u64,
    /// Vocabulary size.
    pub n_vocab: i32,
    /// Tokens of the prompt that were decoded (or encoded, for encoder models).
    pub n_tokens: usize,
    /// Whether the last position's logits were read and found finite (false for models
    /// without an output head, such as embedding models).
    pub logits_checked: bool,
    /// Time from the fork to the child's report.
    pub elapsed: Duration,
}

/// How a file failed [`Model::probe`] (in [`Error::Probe`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProbeFailure {
    /// The child returned an error, as [`Model::load`] or a first decode would in this
    /// process (the message is that error's).
    Refused(String),
    /// The child was killed by a signal (`SIGABRT` from a failed llama.cpp assertion,
    /// `SIGSEGV`, ...). `stderr` is the tail of what it wrote there.
    Crashed {
        /// The signal number.
        signal: i32,
        /// The tail of the child's standard error (llama.cpp's abort message).
        stderr: String,
    },
    /// The child exited without a report (a Rust allocation failure exits this way too).
    Exited {
        /// The exit status.
        code: i32,
        /// The tail of the child's standard error.
        stderr: String,
    },
    /// The child did not finish within [`ProbeOptions::timeout`] and was killed.
    TimedOut(Duration),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!(": {s}")
            }
        };
        match self {
            ProbeFailure::Refused(m) => write!(f, "refused: {m}"),
            ProbeFailure::Crashed { signal, stderr } => {
                write!(f, "crashed with {}{}", signal_name(*signal), tail(stderr))
            }
            ProbeFailure::Exited { code, stderr } => {
                write!(
                    f,
                    "exited with status {code} without a report{}",
                    tail(stderr)
                )
            }
            ProbeFailure::TimedOut(t) => write!(f, "did not finish within {t:?}"),
        }
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => return format!("signal {signal}"),
    };
    format!("{name} (signal {signal})")
}

/// What the child writes to the report pipe.
#[derive(Serialize, Deserialize)]
enum ChildOutcome {
    Passed(ProbeReport),
    Refused(String),
}

/// Bytes kept of the child's standard error (its last lines) and of its report.
const STDERR_TAIL: usize = 2048;
const REPORT_MAX: usize = 1 << 20;

impl Model {
    /// Loads `path` and decodes a short prompt **in a child process**, so that a file
    /// which slips past this crate's checks and crashes, hangs or exhausts memory in
    /// llama.cpp ends the child instead of the application. `Ok` says what the child
    /// found; the file can then be loaded here with [`Model::load`]. The child runs on
    /// the CPU only (GPU drivers do not survive a fork), with one thread and a 64-token
    /// context.
    ///
    /// [`Error::Probe`] says why a file was refused: an error the child got, the signal
    /// that killed it with its last words on standard error, or the timeout. Unix only
    /// (elsewhere [`Error::Unsupported`]).
    ///
    /// A multithreaded application can be forked safely, but a lock another of its
    /// threads held at that instant stays held in the child; should the child need it,
    /// it stalls and the probe reports [`ProbeFailure::TimedOut`]. Probing before other
    /// threads start, or while they are not inside llama.cpp, avoids that.
    ///
    /// ```no_run
    /// use llamacpp::{Error, Model, ModelParams, ProbeOptions};
    /// match Model::probe("untrusted.gguf", &ProbeOptions::default()) {
    ///     Ok(report) => {
    ///         println!("{:?}: {} parameters", report.architecture, report.n_params);
    ///         let model = Model::load("untrusted.gguf", ModelParams::default())?;
    ///         # let _ = model;
    ///     }
    ///     Err(Error::Probe { failure, .. }) => eprintln!("refused: {failure}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn probe(path: impl AsRef<Path>, options: &ProbeOptions) -> Result<ProbeReport> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::ModelLoad {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: "not a regular file".into(),
            });
        }
        let budget = options
            .memory_limit
            .unwrap_or_else(|| meta.len().saturating_add(8 << 30));
        // The child starts with this process's mappings (a model loaded here, a sanitizer's
        // shadow memory): the limit is on what it adds.
        let limit = address_space_in_use().map(|used| used.saturating_add(budget));
        run(path, options.timeout, limit, || child_body(path, options))
    }
}

/// Bytes of address space this process has mapped (Linux: `/proc/self/statm`).
fn address_space_in_use() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    #[cfg(unix)]
    {
        unix::page_size().map(|p| pages.saturating_mul(p))
    }
    #[cfg(not(unix))]
    {
        let _ = pages;
        None
    }
}

/// The child's work: what an application does first with a model.
fn child_body(path: &Path, options: &ProbeOptions) -> Result<ProbeReport> {
    use crate::{Batch, Context, ContextParams, ModelParams};
    let start = Instant::now();
    let model = Model::load(path, ModelParams::default().n_gpu_layers(0).devices(&[])?)?;
    let vocab = model.vocab();
    let mut tokens = if vocab.has_tokenizer() {
        vocab.tokenize(&options.prompt, true, false)?
    } else {
        Vec::new()
    };
    tokens.truncate(64);
    if tokens.is_empty() {
        tokens.push(vocab.token(0)?);
    }
    for &t in &tokens {
        vocab.piece_bytes(t, true)?;
    }
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(64)
            .n_batch(64)
            .n_ubatch(64)
            .n_threads(1)
            .n_threads_batch(1),
    )?;
    let mut batch = Batch::from_tokens(&tokens, 0, 0)?;
    let mut logits_checked = false;
    if model.has_encoder() {
        ctx.encode(&mut batch)?;
    } else {
        ctx.decode(&mut batch)?;
        // Embedding models have no output head; their decode is the test.
        if let Ok(logits) = ctx.logits(-1) {
            if let Some(bad) = logits.iter().position(|x| !x.is_finite()) {
                return Err(Error::Unsupported(format!(
                    "the logits are not finite (logit {bad} is {})",
                    logits[bad]
                )));
            }
            logits_checked = true;
        }
    }
    Ok(ProbeReport {
        architecture: model.architecture(),
        n_params: model.n_params(),
        n_vocab: vocab.n_tokens(),
        n_tokens: tokens.len(),
        logits_checked,
        elapsed: start.elapsed(),
    })
}

#[cfg(not(unix))]
fn run(
    _path: &Path,
    _timeout: Duration,
    _limit: Option<u64>,
    _work: impl FnOnce() -> Result<ProbeReport>,
) -> Result<ProbeReport> {
    Err(Error::Unsupported(
        "Model::probe needs fork (Unix only)".into(),
    ))
}

/// Forks; the child runs `work` under the address-space `limit` (if any) and reports; the parent
/// waits at most `timeout` for it.
#[cfg(unix)]
fn run(
    path: &Path,
    timeout: Duration,
    limit: Option<u64>,
    work: impl FnOnce() -> Result<ProbeReport>,
) -> Result<ProbeReport> {
    crate::backend::init();
    let start = Instant::now();
    let report = unix::pipe()?;
    let err = unix::pipe()?;
    // The child runs `work` and never returns from this call; see `unix::fork_child` for
    // why forking a multithreaded process is acceptable here.
    let (pid, report_r, err_r) = unix::fork_child(report, err, limit, work)?;
    let deadline = start + timeout;
    let collected = unix::collect(pid, report_r, err_r, deadline);
    // Reaped in every case (`collect` killed it on its way out with an error).
    let status = unix::wait(pid)?;
    let (report, stderr, timed_out) = collected?;
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    let failure = if timed_out {
        ProbeFailure::TimedOut(timeout)
    } else {
        match serde_json::from_slice::<ChildOutcome>(&report) {
            Ok(ChildOutcome::Passed(mut r)) if status == unix::Status::Exited(0) => {
                r.elapsed = start.elapsed();
                return Ok(r);
            }
            Ok(ChildOutcome::Refused(m)) if status == unix::Status::Exited(0) => {
                ProbeFailure::Refused(m)
            }
            _ => match status {
                unix::Status::Signaled(signal) => ProbeFailure::Crashed { signal, stderr },
                unix::Status::Exited(code) => ProbeFailure::Exited { code, stderr },
            },
        }
    };
    Err(Error::Probe {
        path: path.into(),
        failure,
    })
}

#[cfg(unix)]
mod unix;

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    use super::unix::test_support::{exit_now, raise_default, write_stderr};

    fn failure(work: impl FnOnce() -> Result<ProbeReport>) -> ProbeFailure {
        match run(Path::new("x.gguf"), Duration::from_secs(60), None, work) {
            Err(Error::Probe { failure, .. }) => failure,
            other => panic!("expected a probe failure, got {other:?}"),
        }
    }

    #[test]
    fn a_ggml_abort_in_the_child_is_reported_with_its_message() {
        let f = failure(|| {
            crate::backend::init();
            crate::raw::backend::ggml_abort(c"model.cpp", 42, c"bad tensor")
        });
        match &f {
            ProbeFailure::Crashed { signal, stderr } => {
                assert_eq!(*signal, libc::SIGABRT);
                assert!(stderr.contains("model.cpp:42: bad tensor"), "{stderr:?}");
            }
            other => panic!("expected Crashed, got {other:?}"),
        }
        assert!(f.to_string().contains("SIGABRT"), "{f}");
    }

    #[test]
    fn a_segfault_and_an_exit_without_report_are_told_apart() {
        let f = failure(|| {
            // The signal a wild pointer would raise, with its default action.
            raise_default(libc::SIGSEGV)
        });
        assert!(
            matches!(
                f,
                ProbeFailure::Crashed {
                    signal: libc::SIGSEGV,
                    ..
                }
            ),
            "{f:?}"
        );
        let f = failure(|| {
            write_stderr("last words\n");
            exit_now(3)
        });
        assert_eq!(
            f,
            ProbeFailure::Exited {
                code: 3,
                stderr: "last words".into()
            }
        );
    }

    #[test]
    fn a_panic_in_the_child_is_a_refusal() {
        let f = failure(|| panic!("boom"));
        assert_eq!(f, ProbeFailure::Refused("the probe panicked: boom".into()));
    }

    #[test]
    fn a_chatty_child_keeps_only_the_tail_of_its_stderr() {
        let f = failure(|| {
            for i in 0..100_000 {
                write_stderr(&format!("line {i}\n"));
            }
            exit_now(1)
        });
        match f {
            ProbeFailure::Exited { code: 1, stderr } => {
                assert!(stderr.len() <= STDERR_TAIL, "{}", stderr.len());
                assert!(stderr.ends_with("line 99999"), "{stderr:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
