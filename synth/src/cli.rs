//! Command-line front end, meant to be mounted as a subcommand
//! (`llama-bench synth ...`) by flattening [`SynthArgs`].

use std::path::PathBuf;

use crate::error::Result;
use crate::spec::{LinearLayout, ModelSpec, Preset, SynthOptions};
use crate::types::FileType;
use crate::vocab::Vocab;
use crate::writer::{WriteReport, write_gguf};

/// Arguments of `synth`: write a random-weight GGUF model.
#[derive(Clone, Debug, clap::Args)]
pub struct SynthArgs {
    /// Model preset: qwen3next-80b-a3b, qwen3next-tiny, qwen35moe-tiny, qwen3moe-30b-a3b, qwen3moe-tiny, llama-tiny.
    #[arg(long)]
    pub preset: Preset,
    /// Number of layers, at full width (default: the preset's).
    #[arg(long)]
    pub layers: Option<u32>,
    /// Type of the large matrices: f32, f16, bf16, q8_0, q4_0, q4_k (norms, biases,
    /// routers and conv kernels stay f32; rows that do not fit a block fall back
    /// as in llama-quantize).
    #[arg(long = "type", default_value = "q8_0")]
    pub ftype: FileType,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seed of all values; the same options and seed give the same bytes.
    #[arg(long, default_value_t = crate::spec::DEFAULT_SEED)]
    pub seed: u64,
    /// No tokenizer (tokenizer.ggml.model = no_vocab): llama.cpp makes dummy tokens.
    #[arg(long)]
    pub no_vocab: bool,
    /// Number of dummy tokens with --no-vocab (default: the preset's vocabulary size).
    #[arg(long, requires = "no_vocab")]
    pub vocab_size: Option<u32>,
    /// Linear-attention tensor layout of qwen3next: current (attn_qkv + attn_gate) or legacy (ssm_in).
    #[arg(long, default_value = "current")]
    pub layout: LinearLayout,
    /// Store routed experts' gate and up projections as one ffn_gate_up_exps tensor.
    #[arg(long)]
    pub fused_experts: bool,
    /// No progress bar and no summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

impl SynthArgs {
    /// The model options these arguments describe.
    #[must_use]
    pub fn options(&self) -> SynthOptions {
        let vocab = if self.no_vocab {
            Vocab::None {
                size: self.vocab_size.unwrap_or_else(|| self.preset.n_vocab()),
            }
        } else {
            Vocab::Bpe
        };
        SynthOptions {
            preset: self.preset,
            layers: self.layers,
            ftype: self.ftype,
            seed: self.seed,
            vocab,
            layout: self.layout,
            fused_experts: self.fused_experts,
        }
    }
}

/// Write the model `args` describe, with a progress bar on stderr, and print
/// a summary line (path, bytes, seconds, MB/s) on stderr unless `--quiet`.
///
/// # Errors
/// Invalid option combinations, or any error of [`write_gguf`].
pub fn run(args: &SynthArgs) -> Result<WriteReport> {
    let spec = ModelSpec::from_options(&args.options())?;
    let report = write_gguf(&spec, &args.output, !args.quiet)?;
    if !args.quiet {
        eprintln!("{report}");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        synth: SynthArgs,
    }

    #[test]
    fn parses_the_documented_command_line() {
        let cli = Cli::try_parse_from([
            "x",
            "--preset",
            "qwen3next-80b-a3b",
            "--layers",
            "4",
            "--type",
            "q4_0",
            "-o",
            "m.gguf",
        ])
        .unwrap();
        let o = cli.synth.options();
        assert_eq!(
            (o.preset, o.layers, o.ftype),
            (Preset::Qwen3Next80bA3b, Some(4), FileType::Q4_0)
        );
        assert_eq!(o.vocab, Vocab::Bpe);

        let cli = Cli::try_parse_from([
            "x",
            "--preset",
            "qwen3next-tiny",
            "-o",
            "m.gguf",
            "--no-vocab",
            "--layout",
            "legacy",
            "--fused-experts",
            "--seed",
            "7",
        ])
        .unwrap();
        let o = cli.synth.options();
        assert_eq!(o.vocab, Vocab::None { size: 1024 });
        assert_eq!(
            (o.layout, o.fused_experts, o.seed),
            (LinearLayout::Legacy, true, 7)
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Cli::try_parse_from(["x", "--preset", "gpt5", "-o", "m"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "--preset", "llama-tiny", "--type", "q2_k", "-o", "m"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "x",
                "--preset",
                "llama-tiny",
                "--vocab-size",
                "9",
                "-o",
                "m"
            ])
            .is_err()
        );
    }
}
