//! `-rpc` end to end on loopback (127.0.0.1 only): a run on a server's device writes records
//! that name the server and that the saved-run compare reads, an unreachable server is an
//! ordinary error, and `compare --rpc-local` runs both builds on servers of their own.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{BIN, bench, tiny};

/// A loopback server (`llama-bench rpc-server`), killed on drop.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    /// A server of the linked build.
    fn start() -> Server {
        Server::start_on(None)
    }

    /// A server of the build whose libraries are in `lib_dir` (`None`: the linked one), picked
    /// through the library path as `compare` picks each build's.
    fn start_on(lib_dir: Option<&str>) -> Server {
        let mut cmd = Command::new(BIN);
        if let Some(dir) = lib_dir {
            let rest = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
            cmd.env("LD_LIBRARY_PATH", format!("{dir}:{rest}"));
        }
        let args = [
            "rpc-server",
            "--port",
            "0",
            "--threads",
            "1",
            "--watch-stdin",
            // its log (on this test's standard error): why it refused a request, should it
            "-v",
        ];
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rpc-server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    panic!("rpc-server exited before listening");
                }
            }
        };
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
        Server { child, endpoint }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rpc_run_records_its_server_and_saved_runs_compare() {
    let m = tiny();
    let server = Server::start();
    let e = server.endpoint.as_str();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    // jsonl on the device picked by name, csv on every registered device (the default): the
    // same layers on the same server, so the two files' tests match.
    for (fmt, dev) in [("jsonl", &["-dev", "RPC0"][..]), ("csv", &[][..])] {
        let mut args = vec!["-m", &m, "-rpc", e, "-p", "16", "-n", "4", "-r", "1"];
        args.extend(["-t", "1", "-o", fmt]);
        args.extend(dev);
        let (status, out, err) = bench(&args);
        assert!(status.success(), "{fmt}: stdout:\n{out}\nstderr:\n{err}");
        let results = llamacpp_bench_core::output::parse(
            llamacpp_bench_core::params::OutputFormat::from_path(std::path::Path::new(&format!(
                "x.{fmt}"
            )))
            .unwrap(),
            &out,
        )
        .expect("parses back");
        assert_eq!(results.len(), 2, "{out}");
        for r in &results {
            // As upstream's llama-bench: the server's device describes itself by its endpoint
            // (in gpu_info), and RPC is among the backends.
            assert!(r.gpu_info.contains(e), "gpu_info {:?}", r.gpu_info);
            assert!(r.backends.split(',').any(|b| b == "RPC"), "{}", r.backends);
            assert!(r.avg_ts > 0.0);
        }
        if fmt == "jsonl" {
            assert!(results.iter().all(|r| r.devices == "RPC0"));
            // Upstream's fields and no others, so compare-llama-bench.py reads every column.
            for line in out.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
                let mut want: Vec<&str> = llamacpp_bench_core::record::FIELDS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                want.extend(["samples_ns", "samples_ts"]);
                assert_eq!(keys, want);
            }
        }
        let f = dir.path().join(format!("rpc.{fmt}"));
        std::fs::write(&f, out).unwrap();
        files.push(f);
    }
    let (status, out, err) = bench(&[
        "compare",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
    ]);
    assert!(status.success(), "{err}");
    assert!(out.contains("pp16") && out.contains("tg4"), "{out}");
}

#[test]
fn unreachable_rpc_server_is_an_error_not_an_abort() {
    // A port nothing listens on: bound for a moment, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let e = format!("127.0.0.1:{port}");
    let (status, out, err) = bench(&[
        "-m",
        &tiny(),
        "-rpc",
        &e,
        "-p",
        "16",
        "-n",
        "0",
        "-r",
        "1",
        "-t",
        "1",
    ]);
    // An exit code (not a signal such as upstream's abort), and a message naming the server.
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(&e), "{err}");
}

#[test]
fn compare_starts_loopback_servers_for_each_build() {
    let (status, out, err) = bench(&[
        "compare",
        "-m",
        &tiny(),
        "--rpc-local",
        "1",
        "-p",
        "16",
        "-n",
        "4",
        "-r",
        "1",
        "-t",
        "1",
        "--steps",
        "8",
        "-o",
        "json",
        // the servers' log: why a request was refused, should one be
        "-v",
    ]);
    assert!(status.success(), "stdout:\n{out}\nstderr:\n{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json rows");
    assert_eq!(rows.len(), 2, "{out}");
    for r in &rows {
        let servers = |key: &str| -> Vec<String> {
            serde_json::from_value(r[key].clone()).unwrap_or_else(|_| panic!("{key} in {r}"))
        };
        let (up, pa) = (servers("upstream_rpc"), servers("patched_rpc"));
        assert_eq!((up.len(), pa.len()), (1, 1), "{r}");
        assert!(up[0].starts_with("127.0.0.1:") && pa[0].starts_with("127.0.0.1:"));
        assert_ne!(up, pa, "each build has its own server");
        assert!(
            r["upstream_ts"].as_f64().unwrap() > 0.0 && r["patched_ts"].as_f64().unwrap() > 0.0
        );
    }
    // Both builds' workers put their layers on their server's device.
    assert!(
        err.contains("RPC devices: upstream RPC0=127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn compare_takes_each_builds_servers_and_a_swapped_pair_is_an_error() {
    let other = llamacpp_sys::build_info::OTHER_LIB_DIR.expect("side-by-side build");
    let (linked, other) = (Server::start(), Server::start_on(Some(other)));
    let (patched, upstream) = match llamacpp_sys::build_info::VARIANT {
        "upstream" => (other.endpoint.as_str(), linked.endpoint.as_str()),
        _ => (linked.endpoint.as_str(), other.endpoint.as_str()),
    };
    let m = tiny();
    let run = |patched: &str, upstream: &str| {
        let mut args = vec![
            "compare",
            "-m",
            &m,
            "-rpc",
            patched,
            "--rpc-upstream",
            upstream,
        ];
        args.extend(["-dev", "RPC0", "-p", "16", "-n", "0", "-r", "1", "-t", "1"]);
        args.extend(["--steps", "8", "-o", "json"]);
        bench(&args)
    };
    let (status, out, err) = run(patched, upstream);
    assert!(status.success(), "stdout:\n{out}\nstderr:\n{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json rows");
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["patched_rpc"], serde_json::json!([patched]));
    assert_eq!(rows[0]["upstream_rpc"], serde_json::json!([upstream]));
    // Each build's client refuses the other's server (wire versions 135 and 7): an error naming
    // the server, from a worker that answered rather than aborted.
    let (status, out, err) = run(upstream, patched);
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("RPC server 127.0.0.1:"), "{err}");
    assert!(!err.contains("exited unexpectedly"), "{err}");
}

#[test]
fn rpc_combinations_that_cannot_work_are_refused() {
    let m = tiny();
    for (args, want) in [
        // one server cannot serve both builds: compare needs the upstream build's too
        (
            &["compare", "-m", &m, "-rpc", "127.0.0.1:50052"][..],
            "--rpc-upstream",
        ),
        (
            &["compare", "-m", &m, "--rpc-upstream", "127.0.0.1:50052"][..],
            "-rpc",
        ),
        (
            &[
                "compare",
                "-m",
                &m,
                "--rpc-local",
                "1",
                "-rpc",
                "127.0.0.1:50052",
            ][..],
            "--rpc-local",
        ),
        (&["-m", &m, "-rpc", "127.0.0.1"][..], "127.0.0.1"),
        (&["rpc-server", "--host", "0.0.0.0"][..], "loopback"),
    ] {
        let (status, out, err) = bench(args);
        assert_eq!(status.code(), Some(1), "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
