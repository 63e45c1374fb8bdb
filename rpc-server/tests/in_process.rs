//! `RpcServer`: a server on a thread of the test process, started on any free port and
//! stopped promptly, idle or with a client connected.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llamacpp::ModelParams;
use llamacpp::rpc::{RpcServer, RpcServerConfig, add_rpc_server, probe};

static SERIAL: Mutex<()> = Mutex::new(());

fn config() -> RpcServerConfig {
    RpcServerConfig::default().port(0).threads(1)
}

fn stoppable_or_skip(test: &str) -> bool {
    let ok = llamacpp::rpc::support().stoppable_server;
    if !ok {
        let e = RpcServer::start(config()).unwrap_err().to_string();
        assert!(e.contains("serve_forever"), "{e}");
        println!("skipping {test}: the upstream build has no stoppable server ({e})");
    }
    ok
}

#[test]
fn rpc_server_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RpcServer>();
}

#[test]
fn starts_on_a_free_port_answers_probes_and_stops_idle() {
    if !stoppable_or_skip("starts_on_a_free_port_answers_probes_and_stops_idle") {
        return;
    }
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = RpcServer::start(config()).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let endpoint = addr.to_string().parse().unwrap();
    let info = probe(&endpoint, Duration::from_secs(5)).unwrap();
    assert_eq!(info.devices, 1);
    assert_eq!(info.version, llamacpp::rpc::support().wire_version);
    // Twice: the server went back to accepting after the first probe hung up.
    assert_eq!(probe(&endpoint, Duration::from_secs(5)).unwrap(), info);
    // The port is taken.
    let e = RpcServer::start(config().port(addr.port())).unwrap_err();
    assert!(matches!(e, llamacpp::Error::Rpc { .. }), "{e:?}");
    let t = Instant::now();
    server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after stop"
    );
}

#[test]
fn stops_promptly_with_a_client_connected() {
    if !stoppable_or_skip("stops_promptly_with_a_client_connected") {
        return;
    }
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = RpcServer::start(config()).unwrap();
    // A client past HELLO, waiting for its next command.
    let mut c = TcpStream::connect(server.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![14u8];
    hello.extend_from_slice(&24u64.to_le_bytes());
    hello.extend_from_slice(&[0u8; 24]);
    c.write_all(&hello).unwrap();
    let mut rsp = [0u8; 36];
    c.read_exact(&mut rsp).unwrap();
    let t = Instant::now();
    drop(server);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    // Its connection was closed.
    let mut buf = [0u8; 8];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn serves_a_model_split_and_fails_cleanly_when_stopped() {
    if !stoppable_or_skip("serves_a_model_split_and_fails_cleanly_when_stopped") {
        return;
    }
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = RpcServer::start(config()).unwrap();
    let devices = add_rpc_server(&server.addr().to_string()).unwrap();
    let model =
        common::load_on(&[&devices[0].name], ModelParams::default().n_gpu_layers(2)).unwrap();
    common::assert_matches_local(
        &common::teacher_forced(&model).unwrap(),
        "split onto an in-process server",
    );
    // Stopping while the model's connection is open: the next decode is an error.
    let mut ctx = common::context(&model);
    let t = Instant::now();
    server.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    let e = ctx
        .decode_tokens(&common::tokens(&model, 4, 5))
        .unwrap_err();
    assert!(matches!(e, llamacpp::Error::Rpc { .. }), "{e:?}");
}
