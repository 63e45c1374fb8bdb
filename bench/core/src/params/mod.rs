//! Command-line parameters: upstream llama-bench's flags, defaults and test expansion.
//!
//! The flags are a `clap::Args` group, [`BenchArgs`], so a `compare` subcommand
//! can flatten the same set. [`BenchParams::parse_args`] parses a stand-alone
//! argument list; [`normalize_args`] is the pre-pass that makes upstream's
//! `-ngl`-style flags work with clap and must run on any command that flattens
//! [`BenchArgs`]:
//!
//! ```
//! use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
//! use llamacpp_bench_core::params::{BenchArgs, normalize_args};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     cmd: Cmd,
//! }
//! #[derive(Subcommand)]
//! enum Cmd {
//!     Compare(#[command(flatten)] BenchArgs),
//! }
//!
//! let argv = normalize_args(&Cli::command(), ["llama-bench", "compare", "-ngl", "99"]);
//! let cli = Cli::from_arg_matches(&Cli::command().try_get_matches_from(argv)?)?;
//! let Cmd::Compare(args) = cli.cmd;
//! assert_eq!(args.resolve().n_gpu_layers, vec![99]);
//! # Ok::<(), clap::Error>(())
//! ```
//!
//! Not supported: upstream's Hugging Face download flags (`-hf`, `-hff`, `-hft`,
//! `--offline`), since this tool does not download models.

mod argv;
mod cli;
mod instance;
mod lists;
mod threads;
mod values;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use argv::normalize_args;
pub use cli::BenchArgs;
pub use instance::TestInstance;
pub use lists::parse_int_range;
pub use threads::default_threads;
pub use values::{
    CacheType, Devices, FlashAttn, LazyMode, LoadMode, Numa, OutputFormat, SplitMode,
    TensorOverride, TensorOverrides, TensorSplit,
};

/// Upstream's default model path.
pub const DEFAULT_MODEL: &str = "models/7B/ggml-model-q4_0.gguf";

/// The resolved parameters of a run: each test parameter as the list of its
/// values (defaults filled in), plus the run options.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchParams {
    /// Model files (`-m`).
    pub model: Vec<String>,
    /// Prompt lengths (`-p`).
    pub n_prompt: Vec<i32>,
    /// Generation lengths (`-n`).
    pub n_gen: Vec<i32>,
    /// Prompt+generation pairs (`-pg`).
    pub n_pg: Vec<(i32, i32)>,
    /// Depths (`-d`).
    pub n_depth: Vec<i32>,
    /// Batch sizes (`-b`).
    pub n_batch: Vec<i32>,
    /// Micro-batch sizes (`-ub`).
    pub n_ubatch: Vec<i32>,
    /// K cache types (`-ctk`).
    pub type_k: Vec<CacheType>,
    /// V cache types (`-ctv`).
    pub type_v: Vec<CacheType>,
    /// Thread counts (`-t`).
    pub n_threads: Vec<i32>,
    /// CPU masks (`-C`).
    pub cpu_mask: Vec<String>,
    /// Strict CPU placement (`--cpu-strict`).
    pub cpu_strict: Vec<bool>,
    /// Polling levels (`--poll`).
    pub poll: Vec<i32>,
    /// GPU layers (`-ngl`).
    pub n_gpu_layers: Vec<i32>,
    /// CPU MoE layers (`-ncmoe`).
    pub n_cpu_moe: Vec<i32>,
    /// Split modes (`-sm`).
    pub split_mode: Vec<SplitMode>,
    /// Load modes (`-lm`, and the deprecated `-mmp`/`-dio`).
    pub load_mode: Vec<LoadMode>,
    /// Lazy modes (`-lzm`).
    pub lazy_mode: Vec<LazyMode>,
    /// Main GPUs (`-mg`).
    pub main_gpu: Vec<i32>,
    /// No-KV-offload settings (`-nkvo`).
    pub no_kv_offload: Vec<bool>,
    /// Flash attention settings (`-fa`).
    pub flash_attn: Vec<FlashAttn>,
    /// Device combinations (`-dev`).
    pub devices: Vec<Devices>,
    /// Tensor splits (`-ts`).
    pub tensor_split: Vec<TensorSplit>,
    /// Override groups (`-ot`).
    pub tensor_buft_overrides: Vec<TensorOverrides>,
    /// Embeddings settings (`-embd`).
    pub embeddings: Vec<bool>,
    /// No-op-offload settings (`-nopo`).
    pub no_op_offload: Vec<bool>,
    /// No-host settings (`--no-host`).
    pub no_host: Vec<bool>,
    /// Repack settings (`--repack`).
    pub repack: Vec<bool>,
    /// Fit targets in MiB (`-fitt`; 0 = off).
    pub fit_target: Vec<u64>,
    /// Fit minimum contexts (`-fitc`; 0 = off).
    pub fit_min_ctx: Vec<u32>,
    /// Repetitions of each test (`-r`).
    pub repetitions: u32,
    /// NUMA strategy (`--numa`; `None` = disabled).
    pub numa: Option<Numa>,
    /// Scheduling priority, -1...3 (`--prio`).
    pub prio: i32,
    /// Seconds to sleep before each test (`--delay`).
    pub delay: u32,
    /// Format on stdout (`-o`).
    pub output: OutputFormat,
    /// Format on stderr (`-oe`).
    pub output_err: OutputFormat,
    /// List devices and exit (`--list-devices`).
    pub list_devices: bool,
    /// Keep llama.cpp's log (`-v`).
    pub verbose: bool,
    /// Progress lines on stderr (`--progress`).
    pub progress: bool,
    /// Skip warmup (`--no-warmup`).
    pub no_warmup: bool,
    /// RPC servers (`-rpc`).
    pub rpc: Vec<String>,
}

/// Upstream's defaults (`cmd_params_defaults`); `n_threads` depends on the machine.
pub fn default_params() -> BenchParams {
    BenchParams {
        model: vec![DEFAULT_MODEL.to_owned()],
        n_prompt: vec![512],
        n_gen: vec![128],
        n_pg: Vec::new(),
        n_depth: vec![0],
        n_batch: vec![2048],
        n_ubatch: vec![512],
        type_k: vec![CacheType::F16],
        type_v: vec![CacheType::F16],
        n_threads: vec![default_threads()],
        cpu_mask: vec!["0x0".to_owned()],
        cpu_strict: vec![false],
        poll: vec![50],
        n_gpu_layers: vec![-1],
        n_cpu_moe: vec![0],
        split_mode: vec![SplitMode::Layer],
        load_mode: vec![LoadMode::Auto],
        lazy_mode: vec![LazyMode::Auto],
        main_gpu: vec![0],
        no_kv_offload: vec![false],
        flash_attn: vec![FlashAttn::Auto],
        devices: vec![Devices::Auto],
        tensor_split: vec![TensorSplit::default()],
        tensor_buft_overrides: vec![TensorOverrides::default()],
        embeddings: vec![false],
        no_op_offload: vec![false],
        no_host: vec![false],
        repack: vec![true],
        fit_target: vec![0],
        fit_min_ctx: vec![0],
        repetitions: 5,
        numa: None,
        prio: 0,
        delay: 0,
        output: OutputFormat::Md,
        output_err: OutputFormat::None,
        list_devices: false,
        verbose: false,
        progress: false,
        no_warmup: false,
        rpc: Vec::new(),
    }
}

impl Default for BenchParams {
    fn default() -> Self {
        default_params()
    }
}

/// The stand-alone command used by [`BenchParams::parse_args`].
#[derive(Parser)]
#[command(
    name = "llama-bench",
    no_binary_name = true,
    about = "Benchmark llama.cpp (upstream llama-bench's flags)",
    after_help = "Multiple values can be given for each test parameter by separating them \
                  with ',' or by giving the flag several times. Integer ranges can be given \
                  as 'first-last', 'first-last+step' or 'first-last*mult'."
)]
struct Standalone {
    #[command(flatten)]
    args: BenchArgs,
}

impl BenchParams {
    /// Parses an argument list **without** the program name.
    ///
    /// Errors (including `--help`, which clap reports as an error of kind
    /// `DisplayHelp`) are clap errors; `err.exit()` prints them as clap does.
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let cmd = Standalone::command();
        let argv = normalize_args(&cmd, args);
        let matches = cmd.try_get_matches_from(argv)?;
        Ok(Standalone::from_arg_matches(&matches)?.args.resolve())
    }

    /// The tests of this run, in upstream's order (`get_cmd_params_instances`).
    ///
    /// The loops run over model, fit target, fit context, GPU layers, CPU MoE
    /// layers, split mode, load mode, lazy mode, main GPU, devices, tensor split,
    /// overrides, no-host, repack, embeddings, no-op-offload, batch, micro-batch,
    /// K type, V type, no-KV-offload, flash attention, threads, CPU mask, CPU
    /// strict, depth and poll, outermost first (model parameters outside, so a
    /// model is reloaded as rarely as possible). Innermost, each combination
    /// yields the prompt tests (`-p`, zeros skipped), then the generation tests
    /// (`-n`, zeros skipped), then the `-pg` tests (`0,0` skipped).
    pub fn instances(&self) -> Vec<TestInstance> {
        instance::expand(self)
    }
}

#[cfg(test)]
mod tests;
