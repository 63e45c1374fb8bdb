//! `compare`'s RPC options and the servers each build's worker registers.
//!
//! The patched ggml-rpc speaks wire version 135 and upstream's 7; each client refuses the other's
//! servers, so the two builds never share a server: either both lists are given (`-rpc` for the
//! patched build, `--rpc-upstream` for the upstream one) or `compare` starts loopback servers for
//! each build itself (`--rpc-local N`).

use super::check_endpoint;
use crate::Result;

/// The RPC options of `compare`, as given (`-rpc` itself is an upstream flag and lives in
/// [`llamacpp_bench_core::params::BenchParams::rpc`]).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct CompareRpc {
    /// The upstream build's RPC servers (`-rpc` names the patched build's), as many.
    #[arg(
        long = "rpc-upstream",
        value_name = "HOST:PORT,...",
        value_delimiter = ','
    )]
    pub upstream: Vec<String>,
    /// Start N loopback RPC servers per build, each in that build's library environment.
    #[arg(long = "rpc-local", value_name = "N")]
    pub local: Option<usize>,
    /// Threads of each server `--rpc-local` starts (default: the first `-t`).
    #[arg(long = "rpc-threads", value_name = "T")]
    pub threads: Option<i32>,
}

/// Which servers each build uses.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcPlan {
    /// No RPC servers.
    None,
    /// The servers given: `[upstream, patched]`, as many in each.
    Given([Vec<String>; 2]),
    /// `compare` starts `servers` loopback servers per build, each with `threads` threads.
    Local {
        /// Servers per build.
        servers: usize,
        /// Threads per server.
        threads: i32,
    },
}

impl CompareRpc {
    /// The servers of each build, from these options and `-rpc` (`patched`); `n_threads` is
    /// `-t`'s list, whose first value the local servers take unless `--rpc-threads` is given.
    pub fn plan(&self, patched: &[String], n_threads: &[i32]) -> Result<RpcPlan> {
        if let Some(t) = self.threads {
            if self.local.is_none() {
                return Err(
                    "--rpc-threads sets the threads of the servers --rpc-local starts; \
                            give it with --rpc-local"
                        .into(),
                );
            }
            if t < 1 {
                return Err(format!("--rpc-threads {t}: at least one thread"));
            }
        }
        if let Some(n) = self.local {
            if !patched.is_empty() || !self.upstream.is_empty() {
                return Err("--rpc-local starts its own servers for both builds; \
                            give it without -rpc and --rpc-upstream"
                    .into());
            }
            if n == 0 {
                return Err("--rpc-local 0: at least one server per build".into());
            }
            let threads = self
                .threads
                .unwrap_or_else(|| n_threads.first().copied().unwrap_or(1).max(1));
            return Ok(RpcPlan::Local {
                servers: n,
                threads,
            });
        }
        match (patched.is_empty(), self.upstream.is_empty()) {
            (true, true) => return Ok(RpcPlan::None),
            (false, true) => {
                return Err(
                    "compare runs two builds and each needs its own RPC servers: \
                            the patched ggml-rpc speaks wire version 135 and upstream's 7, and \
                            each refuses the other's servers. -rpc names the patched build's \
                            servers; give the upstream build's with --rpc-upstream \
                            host:port,... (as many), or let compare start loopback servers \
                            for both with --rpc-local N"
                        .into(),
                );
            }
            (true, false) => {
                return Err(
                    "--rpc-upstream names the upstream build's RPC servers; give the \
                            patched build's with -rpc (as many)"
                        .into(),
                );
            }
            (false, false) => {}
        }
        if patched.len() != self.upstream.len() {
            return Err(format!(
                "-rpc lists {} server(s) and --rpc-upstream {}: both builds need as many, so that \
                 -dev RPC0/... names the same devices in both",
                patched.len(),
                self.upstream.len()
            ));
        }
        for e in patched.iter().chain(&self.upstream) {
            check_endpoint(e)?;
        }
        if let Some(e) = patched.iter().find(|e| self.upstream.contains(e)) {
            return Err(format!(
                "{e} is given to both builds: a server serves one build only \
                 (the patched and the upstream wire versions differ)"
            ));
        }
        Ok(RpcPlan::Given([self.upstream.clone(), patched.to_vec()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        rpc: CompareRpc,
    }

    fn parse(args: &[&str]) -> Result<CompareRpc> {
        use clap::Parser;
        let argv = std::iter::once("compare").chain(args.iter().copied());
        Flags::try_parse_from(argv)
            .map(|f| f.rpc)
            .map_err(|e| e.to_string())
    }

    fn opts(args: &[(&str, &str)]) -> CompareRpc {
        let argv: Vec<&str> = args.iter().flat_map(|(f, v)| [*f, *v]).collect();
        parse(&argv).unwrap()
    }

    fn list(s: &[&str]) -> Vec<String> {
        s.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn lists_split_at_commas_and_add_up() {
        let o = parse(&["--rpc-upstream", "a:1,b:2", "--rpc-upstream", "c:3"]).unwrap();
        assert_eq!(o.upstream, list(&["a:1", "b:2", "c:3"]));
        assert_eq!(parse(&[]).unwrap(), CompareRpc::default());
    }

    #[test]
    fn no_flags_no_servers() {
        assert_eq!(
            CompareRpc::default().plan(&[], &[2]).unwrap(),
            RpcPlan::None
        );
    }

    #[test]
    fn both_lists_given_pair_up() {
        let o = opts(&[("--rpc-upstream", "127.0.0.1:6000,127.0.0.1:6001")]);
        let p = list(&["127.0.0.1:5000", "127.0.0.1:5001"]);
        assert_eq!(
            o.plan(&p, &[2]).unwrap(),
            RpcPlan::Given([list(&["127.0.0.1:6000", "127.0.0.1:6001"]), p])
        );
    }

    #[test]
    fn local_servers_take_the_first_thread_count_unless_told() {
        let o = opts(&[("--rpc-local", "2")]);
        assert_eq!(
            o.plan(&[], &[3, 1]).unwrap(),
            RpcPlan::Local {
                servers: 2,
                threads: 3
            }
        );
        let o = opts(&[("--rpc-local", "1"), ("--rpc-threads", "4")]);
        assert_eq!(
            o.plan(&[], &[2]).unwrap(),
            RpcPlan::Local {
                servers: 1,
                threads: 4
            }
        );
    }

    #[test]
    fn refusals_say_why() {
        let patched = list(&["127.0.0.1:5000"]);
        let cases: [(CompareRpc, Vec<String>, &str); 8] = [
            (opts(&[]), patched.clone(), "--rpc-upstream"),
            (
                opts(&[("--rpc-upstream", "127.0.0.1:6000")]),
                Vec::new(),
                "give the patched build's with -rpc",
            ),
            (
                opts(&[("--rpc-upstream", "127.0.0.1:6000,127.0.0.1:6001")]),
                patched.clone(),
                "as many",
            ),
            (
                opts(&[("--rpc-upstream", "127.0.0.1:5000")]),
                patched.clone(),
                "given to both builds",
            ),
            (
                opts(&[("--rpc-local", "1")]),
                patched.clone(),
                "without -rpc",
            ),
            (opts(&[("--rpc-local", "0")]), Vec::new(), "at least one"),
            (
                opts(&[("--rpc-threads", "2")]),
                Vec::new(),
                "give it with --rpc-local",
            ),
            (
                opts(&[("--rpc-upstream", "nonsense")]),
                patched.clone(),
                "nonsense",
            ),
        ];
        for (o, p, want) in cases {
            let e = o.plan(&p, &[2]).unwrap_err();
            assert!(e.contains(want), "{o:?} {p:?}: {e}");
        }
        let e = parse(&["--rpc-local", "many"]).unwrap_err();
        assert!(e.contains("--rpc-local") && e.contains("many"), "{e}");
    }
}
