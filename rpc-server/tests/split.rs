//! A model split between this process's CPU and `llama-rpc-server` children computes the
//! same logits as a purely local run.

mod common;

use std::sync::Mutex;

use common::{Server, assert_matches_local, load_on, teacher_forced};
use llamacpp::ModelParams;
use llamacpp::rpc::add_rpc_server;

/// One split at a time: the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Loads with the load log captured, checking that `endpoints` got weights.
fn load_logged(names: &[&str], params: ModelParams, endpoints: &[&str]) -> llamacpp::Model {
    let (model, log) = llamacpp::backend::capture_info_log(|| load_on(names, params));
    let model = model.unwrap();
    for e in endpoints {
        assert!(
            log.lines()
                .any(|l| l.contains(e) && l.contains("buffer size")),
            "no weights on {e}:\n{log}"
        );
    }
    model
}

#[test]
fn cpu_and_one_server_match_a_local_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::spawn();
    let devices = add_rpc_server(&server.endpoint).unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].description, server.endpoint);
    assert!(devices[0].name.starts_with("RPC"), "{}", devices[0].name);
    let name = devices[0].name.as_str();

    // Two of the four layers on the server, the rest (and the embeddings) here.
    let model = load_logged(
        &[name],
        ModelParams::default().n_gpu_layers(2),
        &[&server.endpoint],
    );
    // Adding it again while the model's connection is open answers from the registry
    // (a probe would wait behind that connection).
    let again = add_rpc_server(&server.endpoint).unwrap();
    assert_eq!(again[0].name, name);
    assert_matches_local(&teacher_forced(&model).unwrap(), "CPU + 1 server");
}

#[test]
fn cpu_and_two_servers_match_a_local_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = (Server::spawn(), Server::spawn());
    let da = add_rpc_server(&a.endpoint).unwrap();
    let db = add_rpc_server(&b.endpoint).unwrap();
    assert_ne!(da[0].name, db[0].name);
    // Three layers across the two servers, one here.
    let params = ModelParams::default()
        .n_gpu_layers(3)
        .tensor_split(&[1.0, 1.0])
        .unwrap();
    let model = load_logged(
        &[&da[0].name, &db[0].name],
        params,
        &[&a.endpoint, &b.endpoint],
    );
    assert_matches_local(&teacher_forced(&model).unwrap(), "CPU + 2 servers");
}
