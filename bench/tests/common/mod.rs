//! What the binary's end-to-end tests share: running `llama-bench` and the tiny model.

use std::process::{Command, ExitStatus};

use llamacpp_synth::Preset;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_llama-bench");

/// Runs `llama-bench args`: its exit status, stdout and stderr.
pub fn bench(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run llama-bench");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tiny synthetic Qwen3-Next (written once into the synth cache).
pub fn tiny() -> String {
    llamacpp_synth::tiny_model_path(Preset::Qwen3NextTiny)
        .to_string_lossy()
        .into_owned()
}
