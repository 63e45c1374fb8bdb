//! The worker protocol of `llama-bench compare` and `graph`: one JSON [`Request`] per line
//! to a worker process, one JSON [`Response`] per line back.
//!
//! Each build runs in its own worker, because two copies of ggml in one process would share
//! (and fight over) global state. Both ends use these types, so a renamed field is a parse
//! error at once rather than a silent zero; every request has exactly one [`Reply`] variant,
//! which [`Reply::answers`] checks.
//!
//! ```
//! use llamacpp_bench_core::protocol::{Reply, Request, Response};
//!
//! let line = serde_json::to_string(&Request::Rep)?;
//! assert_eq!(line, r#"{"cmd":"rep"}"#);
//! let back: Response = serde_json::from_str(r#"{"ok":{"reply":"rep","ns":1500}}"#)?;
//! assert!(matches!(back, Response::Ok(Reply::Rep { ns: 1500 })));
//! assert!(Reply::Rep { ns: 1 }.answers(&Request::Rep));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::params::TestInstance;

/// A request from the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Which library this process runs: [`Reply::Info`].
    Info,
    /// Register RPC servers (before `Load`): [`Reply::Rpc`] with the devices they added.
    Rpc {
        /// `host:port` of each server, in order (devices `RPC0`, `RPC1`, ...).
        servers: Vec<String>,
    },
    /// Load the test's model with its model parameters (once per worker): [`Reply::Loaded`].
    Load {
        /// The first test of the group that shares these model parameters.
        inst: TestInstance,
    },
    /// Create the test's context, prefill depth, warm up: [`Reply::Prepared`].
    Prepare {
        /// The test.
        inst: TestInstance,
        /// Skip the warm-up run.
        no_warmup: bool,
    },
    /// One timed repetition of the prepared test: [`Reply::Rep`].
    Rep,
    /// Teacher-forced logits, written to `out` as little-endian f32 rows: [`Reply::Logits`].
    Logits {
        /// Tokens to feed.
        tokens: Vec<i32>,
        /// Threads.
        n_threads: i32,
        /// Output file.
        out: String,
    },
    /// Greedy continuation: [`Reply::Greedy`].
    Greedy {
        /// Prompt tokens.
        prompt: Vec<i32>,
        /// Tokens to generate.
        n: usize,
        /// Threads.
        n_threads: i32,
    },
    /// Graph statistics for a batch of `n_tokens`: [`Reply::Graph`].
    Graph {
        /// 1 for a decode step, n_ubatch for a prompt ubatch.
        n_tokens: u32,
        /// Threads.
        n_threads: i32,
    },
}

/// What a worker answers: `{"ok": reply}` or `{"err": message}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success.
    Ok(Reply),
    /// Failure, with the worker's message.
    Err(String),
}

/// The successful answer to each [`Request`], one variant per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// To [`Request::Info`].
    Info(WorkerInfo),
    /// To [`Request::Rpc`].
    Rpc {
        /// The devices the servers added, in order.
        devices: Vec<RpcDevice>,
    },
    /// To [`Request::Load`].
    Loaded(LoadedModel),
    /// To [`Request::Prepare`].
    Prepared,
    /// To [`Request::Rep`].
    Rep {
        /// Nanoseconds the repetition took.
        ns: u64,
    },
    /// To [`Request::Logits`].
    Logits {
        /// Rows written (one per token).
        rows: usize,
        /// Floats per row.
        n_vocab: usize,
    },
    /// To [`Request::Greedy`].
    Greedy {
        /// The generated tokens.
        tokens: Vec<i32>,
    },
    /// To [`Request::Graph`].
    Graph(GraphCounts),
}

impl Reply {
    /// Whether this is the variant that answers `req`.
    pub fn answers(&self, req: &Request) -> bool {
        matches!(
            (req, self),
            (Request::Info, Reply::Info(_))
                | (Request::Rpc { .. }, Reply::Rpc { .. })
                | (Request::Load { .. }, Reply::Loaded(_))
                | (Request::Prepare { .. }, Reply::Prepared)
                | (Request::Rep, Reply::Rep { .. })
                | (Request::Logits { .. }, Reply::Logits { .. })
                | (Request::Greedy { .. }, Reply::Greedy { .. })
                | (Request::Graph { .. }, Reply::Graph(_))
        )
    }
}

/// The library a worker runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// ggml's commit string (`+p` marks the patched build).
    pub build_commit: String,
    /// llama.cpp's system info line.
    pub system_info: String,
}

/// One device an RPC server added: its name (`RPC0`) and description (the server's endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcDevice {
    /// Device name, for `-dev`.
    pub name: String,
    /// Device description.
    pub description: String,
}

/// The figures of the model a worker loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedModel {
    /// llama.cpp's description (`qwen3next 80B.A3B Q4_0`).
    pub desc: String,
    /// Bytes of tensors.
    pub size: u64,
    /// Parameters.
    pub n_params: u64,
    /// Vocabulary size.
    pub n_vocab: usize,
    /// Layers.
    pub n_layer: u32,
    /// Embedding width.
    pub n_embd: u32,
}

/// Ops that only move data: the copies the patch series tries to remove.
pub const COPY_OPS: &[&str] = &["CPY", "CONT", "DUP", "REPEAT", "CONCAT"];

/// The op that gathers rows by index (token embeddings, output rows, recurrent states): counted
/// apart from [`COPY_OPS`], whose figures predate it.
pub const GATHER_OP: &str = "GET_ROWS";

/// Node statistics of one graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphCounts {
    /// Nodes computed.
    pub n_nodes: u64,
    /// Nodes whose op is in [`COPY_OPS`].
    pub copy_nodes: u64,
    /// Bytes those nodes write.
    pub copy_bytes: u64,
    /// Bytes the [`GATHER_OP`] nodes write.
    pub gather_bytes: u64,
    /// Nodes per op.
    pub ops: BTreeMap<String, u64>,
    /// Compute buffer size reported by llama.cpp (all backends), in bytes.
    pub compute_buffer_bytes: u64,
    /// Every computing node in graph order: `OP name [ne0,ne1,ne2,ne3]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::default_params;

    fn every_request() -> Vec<Request> {
        let inst = default_params().instances().remove(0);
        vec![
            Request::Info,
            Request::Rpc {
                servers: vec!["127.0.0.1:50052".into()],
            },
            Request::Load { inst: inst.clone() },
            Request::Prepare {
                inst,
                no_warmup: true,
            },
            Request::Rep,
            Request::Logits {
                tokens: vec![1, 2],
                n_threads: 2,
                out: "/tmp/x.f32".into(),
            },
            Request::Greedy {
                prompt: vec![3],
                n: 4,
                n_threads: 1,
            },
            Request::Graph {
                n_tokens: 1,
                n_threads: 1,
            },
        ]
    }

    fn every_reply() -> Vec<Reply> {
        vec![
            Reply::Info(WorkerInfo::default()),
            Reply::Rpc {
                devices: vec![RpcDevice {
                    name: "RPC0".into(),
                    description: "127.0.0.1:50052".into(),
                }],
            },
            Reply::Loaded(LoadedModel::default()),
            Reply::Prepared,
            Reply::Rep { ns: 7 },
            Reply::Logits {
                rows: 2,
                n_vocab: 10,
            },
            Reply::Greedy { tokens: vec![5] },
            Reply::Graph(GraphCounts {
                n_nodes: 3,
                ops: [("ADD".to_string(), 3)].into(),
                ..GraphCounts::default()
            }),
        ]
    }

    #[test]
    fn requests_and_replies_survive_a_line_of_json() {
        for req in every_request() {
            let line = serde_json::to_string(&req).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
        }
        for reply in every_reply() {
            let resp = Response::Ok(reply);
            let line = serde_json::to_string(&resp).unwrap();
            assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), resp);
        }
        let e = Response::Err("no model loaded".into());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"err":"no model loaded"}"#
        );
    }

    #[test]
    fn each_request_has_exactly_one_reply() {
        for (i, req) in every_request().iter().enumerate() {
            let matching: Vec<usize> = every_reply()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.answers(req))
                .map(|(j, _)| j)
                .collect();
            assert_eq!(matching, vec![i], "{req:?}");
        }
    }

    #[test]
    fn a_renamed_field_is_an_error_not_a_zero() {
        let bad = r#"{"ok":{"reply":"rep","nanos":1500}}"#;
        assert!(serde_json::from_str::<Response>(bad).is_err());
        let bad = r#"{"ok":{"reply":"loaded","desc":"m","size":1}}"#;
        assert!(serde_json::from_str::<Response>(bad).is_err());
    }
}
