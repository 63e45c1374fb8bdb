//! The child side of `compare`: one process per build, driven over stdin/stdout
//! with one JSON request and one JSON response per line.
//!
//! Each build runs in its own process because two copies of ggml in one process
//! would share (and fight over) global state; the parent picks the build by
//! the library path it gives the child.

use std::io::{BufRead, Write};

use llamacpp::Model;
use llamacpp_bench::params::TestInstance;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::checks;
use crate::runner::Prepared;
use crate::to_llama;
use crate::{Result, err};

/// A request from the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Which library this process runs: `{"build_commit", "system_info"}`.
    Info,
    /// Register RPC servers (before `Load`): `[{"name", "description"}]` of their devices.
    Rpc {
        /// `host:port` of each server, in order (devices `RPC0`, `RPC1`, ...).
        servers: Vec<String>,
    },
    /// Load the test's model with its model parameters (once per worker).
    Load {
        /// The first test of the group that shares these model parameters.
        inst: TestInstance,
    },
    /// Create the test's context, prefill depth, warm up.
    Prepare {
        /// The test.
        inst: TestInstance,
        /// Skip the warm-up run.
        no_warmup: bool,
    },
    /// One timed repetition of the prepared test: `{"ns"}`.
    Rep,
    /// Teacher-forced logits, written to `out` as little-endian f32 rows.
    Logits {
        /// Tokens to feed.
        tokens: Vec<i32>,
        /// Threads.
        n_threads: i32,
        /// Output file.
        out: String,
    },
    /// Greedy continuation: `{"tokens"}`.
    Greedy {
        /// Prompt tokens.
        prompt: Vec<i32>,
        /// Tokens to generate.
        n: usize,
        /// Threads.
        n_threads: i32,
    },
    /// Graph statistics for a batch of `n_tokens`.
    Graph {
        /// 1 for a decode step, n_ubatch for a prompt ubatch.
        n_tokens: u32,
        /// Threads.
        n_threads: i32,
    },
}

/// A response: `{"ok": value}` or `{"err": message}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success with a payload.
    Ok(Value),
    /// Failure with a message.
    Err(String),
}

/// The commit string of the llama.cpp library loaded in this process.
pub fn loaded_commit() -> String {
    // SAFETY: ggml_commit returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(llamacpp_sys::ggml_commit()) }
        .to_string_lossy()
        .into_owned()
}

struct State {
    model: Option<&'static Model>,
    prepared: Option<Prepared<'static>>,
}

impl State {
    fn model(&self) -> Result<&'static Model> {
        self.model.ok_or_else(|| "no model loaded".to_string())
    }

    fn handle(&mut self, req: Request) -> Result<Value> {
        match req {
            Request::Info => Ok(
                json!({"build_commit": loaded_commit(), "system_info": llamacpp::backend::system_info()}),
            ),
            Request::Rpc { servers } => {
                if self.model.is_some() {
                    return Err("RPC servers are registered before the model loads".into());
                }
                serde_json::to_value(crate::rpc::register(&servers)?).map_err(err)
            }
            Request::Load { inst } => {
                if self.model.is_some() {
                    return Err("a worker loads one model".into());
                }
                let m = Model::load(&inst.model, to_llama::model_params(&inst)?).map_err(err)?;
                let info = json!({
                    "desc": m.description(), "size": m.size(), "n_params": m.n_params(),
                    "n_vocab": m.vocab().n_tokens(), "n_layer": m.n_layer(), "n_embd": m.n_embd(),
                });
                // The worker lives for one model; leaking it lets prepared tests borrow it for 'static.
                self.model = Some(Box::leak(Box::new(m)));
                Ok(info)
            }
            Request::Prepare { inst, no_warmup } => {
                self.prepared = None;
                self.prepared = Some(Prepared::new(self.model()?, &inst, no_warmup)?);
                Ok(Value::Null)
            }
            Request::Rep => {
                let p = self.prepared.as_mut().ok_or("no test prepared")?;
                Ok(json!({"ns": p.repetition()?}))
            }
            Request::Logits {
                tokens,
                n_threads,
                out,
            } => {
                let rows = checks::teacher_forced(self.model()?, &tokens, n_threads)?;
                let bytes: Vec<u8> = rows
                    .iter()
                    .flatten()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                std::fs::write(&out, bytes).map_err(err)?;
                Ok(json!({"rows": rows.len(), "n_vocab": rows.first().map_or(0, Vec::len)}))
            }
            Request::Greedy {
                prompt,
                n,
                n_threads,
            } => Ok(json!({"tokens": checks::greedy(self.model()?, &prompt, n, n_threads)?})),
            Request::Graph {
                n_tokens,
                n_threads,
            } => serde_json::to_value(checks::graph_counts(self.model()?, n_tokens, n_threads)?)
                .map_err(err),
        }
    }
}

/// Serves requests from stdin until it closes.
pub fn serve() -> Result<()> {
    llamacpp::backend::set_logging(false);
    let mut state = State {
        model: None,
        prepared: None,
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(err)?;
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => match state.handle(req) {
                Ok(v) => Response::Ok(v),
                Err(e) => Response::Err(e),
            },
            Err(e) => Response::Err(format!("bad request: {e}")),
        };
        let text = serde_json::to_string(&resp).map_err(err)?;
        writeln!(stdout, "{text}").map_err(err)?;
        stdout.flush().map_err(err)?;
    }
    Ok(())
}

/// `first` followed by the directories already in the environment variable `var`.
fn search_path(var: &str, first: &str) -> Result<std::ffi::OsString> {
    let rest = std::env::var_os(var).unwrap_or_default();
    let dirs = std::iter::once(std::path::PathBuf::from(first))
        .chain(std::env::split_paths(&rest).filter(|d| !d.as_os_str().is_empty()));
    std::env::join_paths(dirs).map_err(|e| format!("{var}: {e}"))
}

/// A command running this executable with the libraries of `lib_dir` (one build's): that
/// directory goes first on the library path.
pub fn this_exe_on(lib_dir: &str) -> Result<std::process::Command> {
    let exe = std::env::current_exe().map_err(err)?;
    let mut cmd = std::process::Command::new(exe);
    // Prepended, not replacing: a GPU build's own libraries (CUDA runtime, cuBLAS) may
    // be found only through the caller's path.
    cmd.env("LD_LIBRARY_PATH", search_path("LD_LIBRARY_PATH", lib_dir)?)
        .env(
            "DYLD_LIBRARY_PATH",
            search_path("DYLD_LIBRARY_PATH", lib_dir)?,
        );
    Ok(cmd)
}

/// The parent's handle on one worker process.
pub struct Worker {
    /// `patched` or `upstream`.
    pub build: String,
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Worker {
    /// Starts `current_exe worker` with `lib_dir` first on the library path.
    pub fn spawn(build: &str, lib_dir: &str) -> Result<Worker> {
        let mut child = this_exe_on(lib_dir)?
            .arg("worker")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start worker: {e}"))?;
        let stdin = child.stdin.take().ok_or("worker has no stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("worker has no stdout")?);
        Ok(Worker {
            build: build.into(),
            child,
            stdin,
            stdout,
        })
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Value> {
        let text = serde_json::to_string(req).map_err(err)?;
        writeln!(self.stdin, "{text}").map_err(|e| format!("{} worker: {e}", self.build))?;
        self.stdin.flush().map_err(err)?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(err)?;
        if line.is_empty() {
            return Err(format!("{} worker exited unexpectedly", self.build));
        }
        match serde_json::from_str::<Response>(&line)
            .map_err(|e| format!("bad response {line:?}: {e}"))?
        {
            Response::Ok(v) => Ok(v),
            Response::Err(e) => Err(format!("{} worker: {e}", self.build)),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
