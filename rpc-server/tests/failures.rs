//! Servers that cannot be used are errors, never aborts or hangs, and the process goes on
//! to load and decode the model locally.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, assert_matches_local, context, load_local, load_on, teacher_forced};
use llamacpp::rpc::{ClientOptions, add_rpc_server_with};
use llamacpp::{Batch, Context, ContextParams, Error, Model, ModelParams};

/// ggml's I/O timeout is process-wide, and the machine has two cores: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn quick() -> ClientOptions {
    ClientOptions::default().connect_timeout(Duration::from_secs(1))
}

/// After any failure, the same process still loads and decodes the model locally.
fn local_still_works() {
    assert_matches_local(
        &teacher_forced(&load_local()).unwrap(),
        "local after failure",
    );
}

#[test]
fn closed_port_is_an_error() {
    let _s = serial();
    let port = common::free_port();
    let e = add_rpc_server_with(&format!("127.0.0.1:{port}"), &quick()).unwrap_err();
    println!("{e}");
    assert!(matches!(e, Error::Rpc { .. }), "{e:?}");
    assert!(e.to_string().contains("refused"), "{e}");
    local_still_works();
}

#[test]
fn listener_that_never_answers_times_out() {
    let _s = serial();
    // Connections complete in the backlog, but nobody reads or answers them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let t = Instant::now();
    let e = add_rpc_server_with(&endpoint, &quick()).unwrap_err();
    let took = t.elapsed();
    println!("{e} (after {took:?})");
    assert!(e.to_string().contains("no reply"), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(listener);
    local_still_works();
}

#[test]
fn server_of_the_other_variant_is_refused() {
    let _s = serial();
    let ours = llamacpp::rpc::support().wire_version.0;
    // The patched build speaks 7 | 0x80 = 135, upstream 7: answer as the other one.
    let other = if ours & 0x80 != 0 { 7u8 } else { 135 };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 1 + 8 + 24];
        s.read_exact(&mut hello).unwrap();
        assert_eq!(hello[0], 14, "HELLO first");
        let mut reply = 28u64.to_le_bytes().to_vec();
        reply.extend_from_slice(&[other, 0, 0, 0]);
        reply.extend_from_slice(&[0u8; 24]);
        s.write_all(&reply).unwrap();
        // The client hangs up without asking more.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        rest
    });
    let e = add_rpc_server_with(&endpoint, &quick()).unwrap_err();
    println!("{e}");
    assert!(matches!(e, Error::RpcVersion { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("must not be mixed"), "{msg}");
    assert!(msg.contains(&format!("{other}.0.0")), "{msg}");
    assert!(
        fake.join().unwrap().is_empty(),
        "no command after a refused HELLO"
    );
    local_still_works();
}

/// A context of 32-token micro-batches whose graph observer calls `on_second_ubatch`
/// (once) when the second micro-batch's graph starts.
fn ubatch_context(model: &Model, on_second_ubatch: mpsc::Sender<()>) -> Context<'_> {
    let mut first: Option<String> = None;
    let mut seen = 0;
    let params = ContextParams::default()
        .n_ctx(1024)
        .n_batch(512)
        .n_ubatch(32)
        .n_threads(1)
        .observe_graph(move |node| {
            // The first node's name starts every micro-batch's graph.
            let first = first.get_or_insert_with(|| node.name.clone());
            if node.name == *first {
                seen += 1;
                if seen == 2 {
                    let _ = on_second_ubatch.send(());
                }
            }
        });
    Context::new(model, params).unwrap()
}

/// Decodes a 512-token prompt on a model whose layers are all on `server`, with `act`
/// run (on another thread) when the second of its 16 micro-batches starts; the decode,
/// or the next one, fails, and every later one too.
fn fail_during_decode(server: &Server, options: &ClientOptions, act: &'static str) {
    let devices = add_rpc_server_with(&server.endpoint, options).unwrap();
    let model = load_on(&[&devices[0].name], ModelParams::default().n_gpu_layers(-1)).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut ctx = ubatch_context(&model, tx);
    let pid = server.child.id();
    let actor = std::thread::spawn(move || {
        if rx.recv().is_ok() {
            let ok = std::process::Command::new("kill")
                .arg(format!("-{act}"))
                .arg(pid.to_string())
                .status()
                .unwrap()
                .success();
            assert!(ok, "kill -{act} {pid}");
        }
    });
    let prompt = common::tokens(&model, 512, 7);
    let t = Instant::now();
    let first = ctx.decode_tokens(&prompt);
    println!(
        "prompt decode after SIG{act}: {first:?} ({:?})",
        t.elapsed()
    );
    actor.join().unwrap();
    let e = match first {
        Err(e) => e,
        Ok(()) => {
            // The server went away after the last GRAPH_COMPUTE was sent: the next decode
            // sees it.
            let next = ctx.decode_tokens(&prompt[..1]);
            println!("next decode: {next:?}");
            next.unwrap_err()
        }
    };
    assert!(matches!(e, Error::Rpc { .. }), "{e:?}");
    assert!(e.to_string().contains(&server.endpoint), "{e}");
    // The context stays unusable, without calling C.
    let later = ctx.decode_tokens(&prompt[..1]).unwrap_err();
    assert!(later.to_string().contains("unusable"), "{later}");
    let mut b = Batch::from_tokens(&prompt[..1], 0, 0).unwrap();
    assert!(ctx.decode(&mut b).is_err());
    drop(ctx);
    drop(model);
}

#[test]
fn server_killed_during_a_prompt_decode() {
    if !common::patched_or_skip("server_killed_during_a_prompt_decode") {
        return;
    }
    let _s = serial();
    let mut server = Server::spawn();
    fail_during_decode(&server, &ClientOptions::default(), "KILL");
    let status = server.child.wait().unwrap();
    assert!(!status.success(), "{status}");
    local_still_works();
}

#[test]
fn server_hung_during_a_prompt_decode_times_out() {
    if !common::patched_or_skip("server_hung_during_a_prompt_decode_times_out") {
        return;
    }
    let _s = serial();
    let mut server = Server::spawn();
    let options = ClientOptions::default().io_timeout(Some(Duration::from_secs(2)));
    let t = Instant::now();
    fail_during_decode(&server, &options, "STOP");
    println!("hung server noticed after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(30));
    server.signal("CONT");
    assert!(server.alive());
    drop(server);
    local_still_works();
    // A context on the local model is unaffected by the poisoned one.
    let model = load_local();
    let mut ctx = context(&model);
    ctx.decode_tokens(&common::tokens(&model, 8, 3)).unwrap();
}
