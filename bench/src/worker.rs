//! Worker processes: one per build, driven over stdin/stdout with the typed requests and
//! replies of [`llamacpp_bench_core::protocol`], one JSON line each. [`serve`] is the child
//! side (the hidden `worker` subcommand), [`Worker`] the parent's handle.
//!
//! Each build runs in its own process because two copies of ggml in one process
//! would share (and fight over) global state; the parent picks the build by
//! the library path it gives the child.

use std::io::{BufRead, Write};

use llamacpp::Model;
use llamacpp_bench_core::params::TestInstance;
use llamacpp_bench_core::protocol::{
    GraphCounts, LoadedModel, Reply, Request, Response, RpcDevice, WorkerInfo,
};

use crate::checks;
use crate::runner::Prepared;
use crate::to_llama;
use crate::{Result, err};

struct State {
    model: Option<&'static Model>,
    prepared: Option<Prepared<'static>>,
}

impl State {
    fn model(&self) -> Result<&'static Model> {
        self.model.ok_or_else(|| "no model loaded".to_string())
    }

    fn handle(&mut self, req: Request) -> Result<Reply> {
        match req {
            Request::Info => Ok(Reply::Info(WorkerInfo {
                build_commit: llamacpp::backend::build_commit(),
                system_info: llamacpp::backend::system_info(),
            })),
            Request::Rpc { servers } => {
                if self.model.is_some() {
                    return Err("RPC servers are registered before the model loads".into());
                }
                Ok(Reply::Rpc {
                    devices: crate::rpc::register(&servers)?,
                })
            }
            Request::Load { inst } => {
                if self.model.is_some() {
                    return Err("a worker loads one model".into());
                }
                let m = Model::load(&inst.model, to_llama::model_params(&inst)?).map_err(err)?;
                let info = LoadedModel {
                    desc: m.description(),
                    size: m.size(),
                    n_params: m.n_params(),
                    n_vocab: usize::try_from(m.vocab().n_tokens()).unwrap_or(0),
                    n_layer: u32::try_from(m.n_layer()).unwrap_or(0),
                    n_embd: u32::try_from(m.n_embd()).unwrap_or(0),
                };
                // The worker lives for one model; leaking it lets prepared tests borrow it for 'static.
                self.model = Some(Box::leak(Box::new(m)));
                Ok(Reply::Loaded(info))
            }
            Request::Prepare { inst, no_warmup } => {
                self.prepared = None;
                self.prepared = Some(Prepared::new(self.model()?, &inst, no_warmup)?);
                Ok(Reply::Prepared)
            }
            Request::Rep => {
                let p = self.prepared.as_mut().ok_or("no test prepared")?;
                Ok(Reply::Rep {
                    ns: p.repetition()?,
                })
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
                Ok(Reply::Logits {
                    rows: rows.len(),
                    n_vocab: rows.first().map_or(0, Vec::len),
                })
            }
            Request::Greedy {
                prompt,
                n,
                n_threads,
            } => Ok(Reply::Greedy {
                tokens: checks::greedy(self.model()?, &prompt, n, n_threads)?,
            }),
            Request::Graph {
                n_tokens,
                n_threads,
            } => Ok(Reply::Graph(checks::graph_counts(
                self.model()?,
                n_tokens,
                n_threads,
            )?)),
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

    /// Sends one request and waits for its reply, which must be the one that answers it.
    fn call(&mut self, req: &Request) -> Result<Reply> {
        let text = serde_json::to_string(req).map_err(err)?;
        writeln!(self.stdin, "{text}").map_err(|e| format!("{} worker: {e}", self.build))?;
        self.stdin.flush().map_err(err)?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).map_err(err)?;
        if line.is_empty() {
            return Err(format!("{} worker exited unexpectedly", self.build));
        }
        match serde_json::from_str::<Response>(&line)
            .map_err(|e| format!("{} worker: bad response {line:?}: {e}", self.build))?
        {
            Response::Ok(reply) if reply.answers(req) => Ok(reply),
            Response::Ok(reply) => Err(format!(
                "{} worker answered {reply:?} to {req:?}",
                self.build
            )),
            Response::Err(e) => Err(format!("{} worker: {e}", self.build)),
        }
    }

    /// The library this worker runs.
    pub fn info(&mut self) -> Result<WorkerInfo> {
        match self.call(&Request::Info)? {
            Reply::Info(i) => Ok(i),
            other => Err(self.mismatch(other)),
        }
    }

    /// Registers RPC servers; the devices they added.
    pub fn rpc(&mut self, servers: &[String]) -> Result<Vec<RpcDevice>> {
        let servers = servers.to_vec();
        match self.call(&Request::Rpc { servers })? {
            Reply::Rpc { devices } => Ok(devices),
            other => Err(self.mismatch(other)),
        }
    }

    /// Loads `inst`'s model with its model parameters.
    pub fn load(&mut self, inst: &TestInstance) -> Result<LoadedModel> {
        let inst = inst.clone();
        match self.call(&Request::Load { inst })? {
            Reply::Loaded(m) => Ok(m),
            other => Err(self.mismatch(other)),
        }
    }

    /// Creates `inst`'s context, prefills its depth and warms up.
    pub fn prepare(&mut self, inst: &TestInstance, no_warmup: bool) -> Result<()> {
        let inst = inst.clone();
        match self.call(&Request::Prepare { inst, no_warmup })? {
            Reply::Prepared => Ok(()),
            other => Err(self.mismatch(other)),
        }
    }

    /// One timed repetition of the prepared test, in nanoseconds.
    pub fn rep(&mut self) -> Result<u64> {
        match self.call(&Request::Rep)? {
            Reply::Rep { ns } => Ok(ns),
            other => Err(self.mismatch(other)),
        }
    }

    /// Teacher-forced logits of `tokens`: one row of `n_vocab` floats per token.
    pub fn logits(&mut self, tokens: &[i32], n_threads: i32) -> Result<Vec<f32>> {
        let dir = tempfile::tempdir().map_err(err)?;
        let out = dir.path().join(format!("{}.f32", self.build));
        let req = Request::Logits {
            tokens: tokens.to_vec(),
            n_threads,
            out: out.to_string_lossy().into(),
        };
        let (rows, n_vocab) = match self.call(&req)? {
            Reply::Logits { rows, n_vocab } => (rows, n_vocab),
            other => return Err(self.mismatch(other)),
        };
        let bytes = std::fs::read(&out).map_err(err)?;
        if bytes.len() != rows * n_vocab * 4 {
            return Err(format!(
                "{} worker wrote {} bytes of logits for {rows} x {n_vocab}",
                self.build,
                bytes.len()
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Greedy continuation of `prompt` for `n` tokens.
    pub fn greedy(&mut self, prompt: &[i32], n: usize, n_threads: i32) -> Result<Vec<i32>> {
        let req = Request::Greedy {
            prompt: prompt.to_vec(),
            n,
            n_threads,
        };
        match self.call(&req)? {
            Reply::Greedy { tokens } => Ok(tokens),
            other => Err(self.mismatch(other)),
        }
    }

    /// Graph statistics of a batch of `n_tokens` (1: a decode step).
    pub fn graph(&mut self, n_tokens: u32, n_threads: i32) -> Result<GraphCounts> {
        let req = Request::Graph {
            n_tokens,
            n_threads,
        };
        match self.call(&req)? {
            Reply::Graph(c) => Ok(c),
            other => Err(self.mismatch(other)),
        }
    }

    /// A reply of another request's kind ([`Worker::call`] refuses those first).
    fn mismatch(&self, reply: Reply) -> String {
        format!("{} worker: unexpected reply {reply:?}", self.build)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
