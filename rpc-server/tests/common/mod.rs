//! Shared by the RPC tests: `llama-rpc-server` children on 127.0.0.1, the tiny F32
//! qwen3next model, teacher-forced logits.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llamacpp::{Batch, Context, ContextParams, Model, ModelParams, Token};
use llamacpp_synth::{FileType, Preset, SynthOptions};

/// A `llama-rpc-server -t 1` child on 127.0.0.1; killed when dropped.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
}

impl Server {
    pub fn spawn() -> Server {
        Self::spawn_with(&[])
    }

    pub fn spawn_with(extra: &[&str]) -> Server {
        Self::spawn_env(extra, &[])
    }

    pub fn spawn_env(extra: &[&str], envs: &[(&str, &std::path::Path)]) -> Server {
        // Port 0 needs the patched build; upstream gets a port that was free a moment ago.
        let port = if llamacpp::rpc::support().stoppable_server {
            0
        } else {
            free_port()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_llama-rpc-server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
            .args(extra)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn llama-rpc-server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let endpoint = loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let status = child.wait().unwrap();
                panic!("llama-rpc-server exited ({status}) before listening");
            }
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                break addr.to_string();
            }
        };
        // Drain the rest (upstream's server prints a line per client) so it never blocks.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        wait_until_accepting(&endpoint);
        Server { child, endpoint }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped child would not die of SIGKILL's delivery until continued on some
        // systems; SIGCONT first is harmless.
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The upstream server announces its port before binding: wait for the bind.
fn wait_until_accepting(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(endpoint).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{endpoint} never accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tiny qwen3next model in F32: every backend computes it with the same kernels, so a
/// split run matches a local one exactly.
pub fn model_path() -> PathBuf {
    llamacpp::backend::set_logging(false);
    let mut opts = SynthOptions::new(Preset::Qwen3NextTiny);
    opts.ftype = FileType::F32;
    llamacpp_synth::cached_model(&opts).expect("write the F32 qwen3next model")
}

/// The model on the CPU only (an explicit empty device list: this process may have
/// servers registered, dead ones included, which a default load would use).
pub fn load_local() -> Model {
    Model::load(model_path(), ModelParams::default().devices(&[]).unwrap()).unwrap()
}

pub fn load_on(devices: &[&str], params: ModelParams) -> llamacpp::Result<Model> {
    Model::load(model_path(), params.devices(devices)?)
}

pub fn context(model: &Model) -> Context<'_> {
    Context::new(
        model,
        ContextParams::default()
            .n_ctx(1024)
            .n_batch(512)
            .n_ubatch(512)
            .n_threads(1),
    )
    .unwrap()
}

/// Fixed tokens of the model's vocabulary.
pub fn tokens(model: &Model, n: usize, seed: u32) -> Vec<Token> {
    let vocab = model.vocab();
    (0..n as u32)
        .map(|i| (i * 37 + seed * 101 + 11) % 1000 + 3)
        .map(|id| vocab.token(id as i32).unwrap())
        .collect()
}

/// Logits of a 6-token prompt and then of 16 teacher-forced single-token steps.
pub fn teacher_forced(model: &Model) -> llamacpp::Result<Vec<Vec<f32>>> {
    let mut ctx = context(model);
    let all = tokens(model, 22, 1);
    let mut out = Vec::new();
    let mut b = Batch::from_tokens(&all[..6], 0, 0)?;
    ctx.decode(&mut b)?;
    out.push(ctx.logits(-1)?.to_vec());
    for (i, &t) in all.iter().enumerate().skip(6) {
        b.clear();
        b.add(t, i as i32, &[0], true)?;
        ctx.decode(&mut b)?;
        out.push(ctx.logits(-1)?.to_vec());
    }
    Ok(out)
}

/// The logits of a purely local run (computed once per test process).
pub fn local_reference() -> &'static [Vec<f32>] {
    static REF: std::sync::OnceLock<Vec<Vec<f32>>> = std::sync::OnceLock::new();
    REF.get_or_init(|| teacher_forced(&load_local()).unwrap())
}

/// Normalised mean squared error of `a` against `b`, and the largest absolute difference.
pub fn compare(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f32) {
    assert_eq!(a.len(), b.len());
    let (mut num, mut den, mut max) = (0f64, 0f64, 0f32);
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        num += f64::from(x - y).powi(2);
        den += f64::from(*y).powi(2);
        max = max.max((x - y).abs());
    }
    (num / den.max(f64::MIN_POSITIVE), max)
}

/// The split run's logits match the local ones.
pub fn assert_matches_local(logits: &[Vec<f32>], what: &str) {
    let (nmse, max) = compare(logits, local_reference());
    println!("{what}: NMSE {nmse:e}, max abs diff {max:e}");
    assert!(nmse <= 1e-6, "{what}: NMSE {nmse}");
    assert!(logits.iter().flatten().all(|x| x.is_finite()));
}

/// Whether this build turns server failures into errors (patched); prints why not.
pub fn patched_or_skip(test: &str) -> bool {
    let s = llamacpp::rpc::support();
    if !s.detects_failures {
        println!(
            "skipping {test}: the upstream build has no \"ggml_backend_rpc_endpoint_failed\" \
             (a server failure aborts its client)"
        );
    }
    s.detects_failures
}
