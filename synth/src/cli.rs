//! Command-line front end, meant to be mounted as a subcommand
//! (`llama-bench synth ...`) by flattening [`SynthArgs`].

use std::path::PathBuf;

use crate::error::Result;
use crate::lora::{LoraOptions, lora_spec};
use crate::spec::{LinearLayout, ModelSpec, Preset, SynthOptions};
use crate::types::FileType;
use crate::vocab::Vocab;
use crate::writer::{WriteReport, write_gguf};

/// Arguments of `synth`: write a random-weight GGUF model.
#[derive(Clone, Debug, clap::Args)]
pub struct SynthArgs {
    /// Model preset: qwen3next-80b-a3b, qwen3next-tiny, qwen35moe-tiny, qwen3moe-30b-a3b, qwen3moe-tiny, llama-tiny, llama3-8b.
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
    /// Write a random LoRA adapter of this rank for the described model instead of
    /// the model itself (`general.type = adapter`; load it with the model written by
    /// the same options).
    #[arg(long)]
    pub lora_rank: Option<u64>,
    /// `adapter.lora.alpha` of the adapter (default: the rank, i.e. scale 1).
    #[arg(long, requires = "lora_rank")]
    pub lora_alpha: Option<f32>,
    /// Comma-separated substrings of the base tensors that get LoRA pairs
    /// (default: every 2-D projection of the blocks).
    #[arg(long, requires = "lora_rank", value_delimiter = ',')]
    pub lora_targets: Vec<String>,
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
            ..SynthOptions::new(self.preset)
        }
    }

    /// The adapter options, when `--lora-rank` asks for an adapter.
    #[must_use]
    pub fn lora_options(&self) -> Option<LoraOptions> {
        let rank = self.lora_rank?;
        Some(LoraOptions {
            rank,
            alpha: self.lora_alpha.unwrap_or(rank as f32),
            seed: self.seed,
            targets: self.lora_targets.clone(),
            ..LoraOptions::new()
        })
    }
}

/// Write the model `args` describe, with a progress bar on stderr, and print
/// a summary line (path, bytes, seconds, MB/s) on stderr unless `--quiet`.
///
/// # Errors
/// Invalid option combinations, or any error of [`write_gguf`].
pub fn run(args: &SynthArgs) -> Result<WriteReport> {
    let mut spec = ModelSpec::from_options(&args.options())?;
    if let Some(lora) = args.lora_options() {
        spec = lora_spec(&spec, &lora)?;
    }
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
    fn lora_flags_describe_an_adapter() {
        let cli = Cli::try_parse_from([
            "x",
            "--preset",
            "llama-tiny",
            "-o",
            "a.gguf",
            "--lora-rank",
            "8",
            "--lora-targets",
            "attn_q,ffn_up",
        ])
        .unwrap();
        let l = cli.synth.lora_options().unwrap();
        assert_eq!((l.rank, l.alpha), (8, 8.0));
        assert_eq!(l.targets, ["attn_q", "ffn_up"]);
        assert!(
            Cli::try_parse_from([
                "x",
                "--preset",
                "llama-tiny",
                "-o",
                "m",
                "--lora-alpha",
                "2"
            ])
            .is_err()
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
