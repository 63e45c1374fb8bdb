//! The `llama-rpc-server` command line: refusals and the announced address.

mod common;

use std::process::{Command, Stdio};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llama-rpc-server"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn non_loopback_host_needs_allow_remote() {
    let (ok, text) = run(&["-H", "192.0.2.1", "-p", "50052"]);
    assert!(!ok);
    assert!(
        text.contains("allow_remote") || text.contains("allow-remote"),
        "{text}"
    );
    assert!(!text.contains("listening on"), "{text}");
}

#[test]
fn allow_remote_warns_loudly() {
    // 192.0.2.1 (TEST-NET-1) belongs to no interface here: the bind fails after the
    // warning, and nothing listens anywhere.
    let (ok, text) = run(&[
        "-H",
        "192.0.2.1",
        "-p",
        "50052",
        "--allow-remote",
        "-t",
        "1",
    ]);
    assert!(!ok, "{text}");
    for line in [
        "no authentication",
        "run code in this process",
        "never expose",
    ] {
        assert!(text.contains(line), "missing {line:?}:\n{text}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let port = common::free_port().to_string();
    for (args, why) in [
        (&["-H", "localhost"][..], "localhost"),
        (&["-H", "::1"], "::1"),
        (&["-p", "70000"], "70000"),
        (&["-t", "0", "-p", &port], "threads"),
        (&["-t", "5000", "-p", &port], "threads"),
        (&["-d", "NoSuchDevice", "-p", &port], "NoSuchDevice"),
    ] {
        let (ok, text) = run(args);
        assert!(!ok, "{args:?} accepted:\n{text}");
        assert!(text.contains(why), "{args:?}:\n{text}");
        assert!(!text.contains("listening on"), "{args:?}:\n{text}");
    }
}

#[test]
fn announces_its_port_and_serves() {
    let server = common::Server::spawn();
    let endpoint = server.endpoint.parse().unwrap();
    let info = llamacpp::rpc::probe(&endpoint, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(info.devices, 1);
}

#[test]
fn sigterm_stops_it_cleanly() {
    if !llamacpp::rpc::support().stoppable_server {
        println!("skipping sigterm_stops_it_cleanly: the upstream build serves until killed");
        return;
    }
    let mut server = common::Server::spawn();
    server.signal("TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn cache_lives_under_llama_cache() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::Server::spawn_env(&["-c"], &[("LLAMA_CACHE", dir.path())]);
    assert!(dir.path().join("rpc").is_dir());
    drop(server);
}
