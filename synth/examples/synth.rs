//! `synth`: write a random-weight GGUF model from the command line.
//!
//! ```text
//! cargo run --release -p llamacpp-synth --example synth -- \
//!     --preset qwen3next-80b-a3b --layers 4 --type q4_0 -o m.gguf
//! ```

use clap::Parser;
use llamacpp_synth::cli::{SynthArgs, run};

/// Write a random-weight GGUF model.
#[derive(Parser)]
#[command(name = "synth")]
struct Cli {
    #[command(flatten)]
    args: SynthArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
