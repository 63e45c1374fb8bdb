//! The command-line flags, as a `clap::Args` group.
//!
//! Flag spellings are upstream's. Its multi-letter single-dash flags (`-ngl`,
//! `-ub`, `-ctk`, ...) are declared here as hidden long aliases (`--ngl`) and
//! [`normalize_args`](super::normalize_args) rewrites `-ngl` to `--ngl` before
//! clap sees it; without that step clap would read `-ngl` as `-n gl`.
//!
//! Every test parameter may be given several times and takes a comma list each
//! time; the occurrences are concatenated. [`BenchArgs::resolve`] applies the
//! defaults to the parameters that were not given.

use clap::ArgAction;

use super::lists::{parse_bool_list, parse_int_range, parse_uint_list, split_list};
use super::values::{
    CacheType, Devices, FlashAttn, LazyMode, LoadMode, Numa, OutputFormat, SplitMode,
    TensorOverrides, TensorSplit, parse_list,
};
use super::{BenchParams, default_params};

/// The values of one occurrence of a list flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Many<T>(pub Vec<T>);

/// A `-pg` value: prompt and generation lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptGen(pub i32, pub i32);

fn int_list(s: &str) -> Result<Many<i32>, String> {
    parse_int_range(s, false).map(Many)
}
fn signed_int_list(s: &str) -> Result<Many<i32>, String> {
    parse_int_range(s, true).map(Many)
}
fn bool_list(s: &str) -> Result<Many<bool>, String> {
    parse_bool_list(s).map(Many)
}
fn str_list(s: &str) -> Result<Many<String>, String> {
    Ok(Many(
        split_list(s)?.into_iter().map(str::to_owned).collect(),
    ))
}
fn u64_list(s: &str) -> Result<Many<u64>, String> {
    parse_uint_list(s).map(Many)
}
fn u32_list(s: &str) -> Result<Many<u32>, String> {
    parse_uint_list(s).map(Many)
}
fn cache_types(s: &str) -> Result<Many<CacheType>, String> {
    parse_list(s, CacheType::parse).map(Many)
}
fn split_modes(s: &str) -> Result<Many<SplitMode>, String> {
    parse_list(s, SplitMode::parse).map(Many)
}
fn load_modes(s: &str) -> Result<Many<LoadMode>, String> {
    parse_list(s, LoadMode::parse).map(Many)
}
fn lazy_modes(s: &str) -> Result<Many<LazyMode>, String> {
    parse_list(s, LazyMode::parse).map(Many)
}
fn flash_attn_list(s: &str) -> Result<Many<FlashAttn>, String> {
    parse_list(s, FlashAttn::parse).map(Many)
}
fn devices_list(s: &str) -> Result<Many<Devices>, String> {
    parse_list(s, Devices::parse).map(Many)
}
fn tensor_splits(s: &str) -> Result<Many<TensorSplit>, String> {
    parse_list(s, TensorSplit::parse).map(Many)
}
/// `-ot`: comma-separated groups; unlike other lists, an empty group is allowed
/// (it means "no overrides").
fn override_groups(s: &str) -> Result<Many<TensorOverrides>, String> {
    s.split(',')
        .map(TensorOverrides::parse)
        .collect::<Result<Vec<_>, _>>()
        .map(Many)
}
fn prompt_gen(s: &str) -> Result<PromptGen, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let [pp, tg] = parts.as_slice() else {
        return Err(format!("expected <pp,tg>, got '{s}'"));
    };
    let num = |v: &str| {
        v.trim()
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("invalid token count '{v}' in '{s}'"))
    };
    Ok(PromptGen(num(pp)?, num(tg)?))
}
fn prio(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(p) if (-1..=3).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid priority '{s}' (expected -1, 0, 1, 2 or 3)"
        )),
    }
}

/// The flags of a benchmark run, for `#[command(flatten)]` into a command or
/// subcommand. Turn them into [`BenchParams`] with [`BenchArgs::resolve`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BenchArgs {
    /// Model file(s) [default: models/7B/ggml-model-q4_0.gguf]
    #[arg(short = 'm', long = "model", value_name = "FILENAME", value_parser = str_list,
          help_heading = "Test parameters")]
    model: Vec<Many<String>>,

    /// Prompt lengths [default: 512]
    #[arg(short = 'p', long = "n-prompt", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_prompt: Vec<Many<i32>>,

    /// Generation lengths [default: 128]
    #[arg(short = 'n', long = "n-gen", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_gen: Vec<Many<i32>>,

    /// (-pg) Prompt then generation test, once per occurrence [default: none]
    #[arg(long = "pg", value_name = "PP,TG", value_parser = prompt_gen, action = ArgAction::Append,
          help_heading = "Test parameters")]
    n_pg: Vec<PromptGen>,

    /// Context depth prefilled before each test [default: 0]
    #[arg(short = 'd', long = "n-depth", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_depth: Vec<Many<i32>>,

    /// Logical batch sizes [default: 2048]
    #[arg(short = 'b', long = "batch-size", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_batch: Vec<Many<i32>>,

    /// (-ub) Physical batch sizes [default: 512]
    #[arg(long = "ubatch-size", alias = "ub", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_ubatch: Vec<Many<i32>>,

    /// (-ctk) K cache types [default: f16]
    #[arg(long = "cache-type-k", alias = "ctk", value_name = "T", value_parser = cache_types,
          help_heading = "Test parameters")]
    type_k: Vec<Many<CacheType>>,

    /// (-ctv) V cache types [default: f16]
    #[arg(long = "cache-type-v", alias = "ctv", value_name = "T", value_parser = cache_types,
          help_heading = "Test parameters")]
    type_v: Vec<Many<CacheType>>,

    /// Thread counts [default: the number of physical cores]
    #[arg(short = 't', long = "threads", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_threads: Vec<Many<i32>>,

    /// CPU affinity masks, hex [default: 0x0]
    #[arg(short = 'C', long = "cpu-mask", value_name = "HEX", value_parser = str_list,
          help_heading = "Test parameters")]
    cpu_mask: Vec<Many<String>>,

    /// Strict CPU placement, 0|1 [default: 0]
    #[arg(long = "cpu-strict", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    cpu_strict: Vec<Many<bool>>,

    /// Polling level, 0...100 [default: 50]
    #[arg(long = "poll", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    poll: Vec<Many<i32>>,

    /// (-ngl) Layers offloaded to the GPU, -1 = all [default: -1]
    #[arg(long = "n-gpu-layers", alias = "ngl", value_name = "N", value_parser = signed_int_list,
          allow_hyphen_values = true, help_heading = "Test parameters")]
    n_gpu_layers: Vec<Many<i32>>,

    /// (-ncmoe) MoE layers whose experts stay on the CPU [default: 0]
    #[arg(long = "n-cpu-moe", alias = "ncmoe", value_name = "N", value_parser = int_list,
          help_heading = "Test parameters")]
    n_cpu_moe: Vec<Many<i32>>,

    /// (-sm) Split mode: none|layer|row|tensor [default: layer]
    #[arg(long = "split-mode", alias = "sm", value_name = "MODE", value_parser = split_modes,
          help_heading = "Test parameters")]
    split_mode: Vec<Many<SplitMode>>,

    /// (-mg) Main GPU index [default: 0]
    #[arg(long = "main-gpu", alias = "mg", value_name = "I", value_parser = int_list,
          help_heading = "Test parameters")]
    main_gpu: Vec<Many<i32>>,

    /// (-nkvo) Keep the KV cache off the GPU, 0|1 [default: 0]
    #[arg(long = "no-kv-offload", alias = "nkvo", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    no_kv_offload: Vec<Many<bool>>,

    /// (-fa) Flash attention: on|off|auto [default: auto]
    #[arg(long = "flash-attn", alias = "fa", value_name = "on|off|auto",
          value_parser = flash_attn_list, help_heading = "Test parameters")]
    flash_attn: Vec<Many<FlashAttn>>,

    /// (-dev) Devices, dev0/dev1/..., none or auto [default: auto]
    #[arg(long = "device", alias = "dev", value_name = "DEVS", value_parser = devices_list,
          help_heading = "Test parameters")]
    devices: Vec<Many<Devices>>,

    /// (-lm) Load mode: auto|none|mmap|mlock|mmap+mlock|dio [default: auto]
    #[arg(long = "load-mode", alias = "lm", value_name = "MODE", value_parser = load_modes,
          help_heading = "Test parameters")]
    load_mode: Vec<Many<LoadMode>>,

    /// (-mmp) Deprecated: 1 = --load-mode mmap, 0 = --load-mode none
    #[arg(long = "mmap", alias = "mmp", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    mmap: Vec<Many<bool>>,

    /// (-dio) Deprecated: 1 = --load-mode dio, 0 = --load-mode none
    #[arg(long = "direct-io", alias = "dio", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    direct_io: Vec<Many<bool>>,

    /// (-lzm) Lazy tensor reading: on|auto|off [default: auto]
    #[arg(long = "lazy-mode", alias = "lzm", value_name = "MODE", value_parser = lazy_modes,
          help_heading = "Test parameters")]
    lazy_mode: Vec<Many<LazyMode>>,

    /// (-embd) Embeddings mode, 0|1 [default: 0]
    #[arg(long = "embeddings", alias = "embd", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    embeddings: Vec<Many<bool>>,

    /// (-ts) Tensor split, ts0/ts1/.. [default: 0]
    #[arg(long = "tensor-split", alias = "ts", value_name = "SPLIT", value_parser = tensor_splits,
          help_heading = "Test parameters")]
    tensor_split: Vec<Many<TensorSplit>>,

    /// (-ot) Tensor buffer overrides, PATTERN=BUFFER_TYPE;... [default: none]
    #[arg(long = "override-tensor", alias = "ot", value_name = "OVERRIDES",
          value_parser = override_groups, help_heading = "Test parameters")]
    tensor_buft_overrides: Vec<Many<TensorOverrides>>,

    /// (-nopo) Disable operation offload, 0|1 [default: 0]
    #[arg(long = "no-op-offload", alias = "nopo", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    no_op_offload: Vec<Many<bool>>,

    /// Bypass the host buffer, 0|1 [default: 0]
    #[arg(long = "no-host", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    no_host: Vec<Many<bool>>,

    /// Weight repacking, 0|1 [default: 1]
    #[arg(long = "repack", value_name = "0|1", value_parser = bool_list,
          help_heading = "Test parameters")]
    repack: Vec<Many<bool>>,

    /// (-fitt) Fit the model to device memory with this margin per device, MiB [default: off]
    #[arg(long = "fit-target", alias = "fitt", value_name = "MIB", value_parser = u64_list)]
    fit_target: Vec<Many<u64>>,

    /// (-fitc) Minimum context size for --fit-target [default: 4096]
    #[arg(long = "fit-ctx", alias = "fitc", value_name = "N", value_parser = u32_list)]
    fit_min_ctx: Vec<Many<u32>>,

    /// Times to repeat each test [default: 5]
    #[arg(short = 'r', long = "repetitions", value_name = "N", overrides_with = "repetitions",
          value_parser = clap::value_parser!(u32).range(1..))]
    repetitions: Option<u32>,

    /// NUMA mode [default: disabled]
    #[arg(long = "numa", value_name = "MODE", overrides_with = "numa")]
    numa: Option<Numa>,

    /// Process and thread priority: -1|0|1|2|3 [default: 0]
    #[arg(long = "prio", value_name = "P", value_parser = prio, allow_hyphen_values = true,
          overrides_with = "prio")]
    prio: Option<i32>,

    /// Seconds to wait before each test [default: 0]
    #[arg(long = "delay", value_name = "S", overrides_with = "delay")]
    delay: Option<u32>,

    /// Output format on stdout [default: md]
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        overrides_with = "output"
    )]
    output: Option<OutputFormat>,

    /// (-oe) Output format on stderr [default: none]
    #[arg(
        long = "output-err",
        alias = "oe",
        value_name = "FORMAT",
        overrides_with = "output_err"
    )]
    output_err: Option<OutputFormat>,

    /// List the available devices and exit
    #[arg(long = "list-devices")]
    list_devices: bool,

    /// Verbose output (llama.cpp's log)
    #[arg(short = 'v', long = "verbose", overrides_with = "verbose")]
    verbose: bool,

    /// Print test progress on stderr
    #[arg(long = "progress", overrides_with = "progress")]
    progress: bool,

    /// Skip the warmup runs
    #[arg(long = "no-warmup", overrides_with = "no_warmup")]
    no_warmup: bool,

    /// (-rpc) RPC servers to register, comma separated
    #[arg(long = "rpc", value_name = "SERVERS", value_parser = str_list)]
    rpc: Vec<Many<String>>,
}

/// Concatenates the occurrences of a list flag, or returns `default` if it was
/// never given.
fn or_default<T: Clone>(given: &[Many<T>], default: &[T]) -> Vec<T> {
    let all: Vec<T> = given.iter().flat_map(|m| m.0.iter().cloned()).collect();
    if all.is_empty() {
        default.to_vec()
    } else {
        all
    }
}

impl BenchArgs {
    /// Applies upstream's defaults to the parameters that were not given.
    ///
    /// `-mmp` and `-dio` add to the `--load-mode` list (after any `-lm` values),
    /// as upstream maps them onto load modes.
    pub fn resolve(&self) -> BenchParams {
        let d = default_params();
        let mut load_mode: Vec<LoadMode> =
            self.load_mode.iter().flat_map(|m| m.0.clone()).collect();
        for m in &self.mmap {
            load_mode.extend(
                m.0.iter()
                    .map(|&on| if on { LoadMode::Mmap } else { LoadMode::None }),
            );
        }
        for m in &self.direct_io {
            load_mode.extend(
                m.0.iter()
                    .map(|&on| if on { LoadMode::Dio } else { LoadMode::None }),
            );
        }
        if load_mode.is_empty() {
            load_mode = d.load_mode.clone();
        }
        BenchParams {
            model: or_default(&self.model, &d.model),
            n_prompt: or_default(&self.n_prompt, &d.n_prompt),
            n_gen: or_default(&self.n_gen, &d.n_gen),
            n_pg: if self.n_pg.is_empty() {
                d.n_pg.clone()
            } else {
                self.n_pg.iter().map(|p| (p.0, p.1)).collect()
            },
            n_depth: or_default(&self.n_depth, &d.n_depth),
            n_batch: or_default(&self.n_batch, &d.n_batch),
            n_ubatch: or_default(&self.n_ubatch, &d.n_ubatch),
            type_k: or_default(&self.type_k, &d.type_k),
            type_v: or_default(&self.type_v, &d.type_v),
            n_threads: or_default(&self.n_threads, &d.n_threads),
            cpu_mask: or_default(&self.cpu_mask, &d.cpu_mask),
            cpu_strict: or_default(&self.cpu_strict, &d.cpu_strict),
            poll: or_default(&self.poll, &d.poll),
            n_gpu_layers: or_default(&self.n_gpu_layers, &d.n_gpu_layers),
            n_cpu_moe: or_default(&self.n_cpu_moe, &d.n_cpu_moe),
            split_mode: or_default(&self.split_mode, &d.split_mode),
            load_mode,
            lazy_mode: or_default(&self.lazy_mode, &d.lazy_mode),
            main_gpu: or_default(&self.main_gpu, &d.main_gpu),
            no_kv_offload: or_default(&self.no_kv_offload, &d.no_kv_offload),
            flash_attn: or_default(&self.flash_attn, &d.flash_attn),
            devices: or_default(&self.devices, &d.devices),
            tensor_split: or_default(&self.tensor_split, &d.tensor_split),
            tensor_buft_overrides: or_default(
                &self.tensor_buft_overrides,
                &d.tensor_buft_overrides,
            ),
            embeddings: or_default(&self.embeddings, &d.embeddings),
            no_op_offload: or_default(&self.no_op_offload, &d.no_op_offload),
            no_host: or_default(&self.no_host, &d.no_host),
            repack: or_default(&self.repack, &d.repack),
            fit_target: or_default(&self.fit_target, &d.fit_target),
            fit_min_ctx: or_default(&self.fit_min_ctx, &d.fit_min_ctx),
            repetitions: self.repetitions.unwrap_or(d.repetitions),
            numa: self.numa.or(d.numa),
            prio: self.prio.unwrap_or(d.prio),
            delay: self.delay.unwrap_or(d.delay),
            output: self.output.unwrap_or(d.output),
            output_err: self.output_err.unwrap_or(d.output_err),
            list_devices: self.list_devices,
            verbose: self.verbose,
            progress: self.progress,
            no_warmup: self.no_warmup,
            rpc: or_default(&self.rpc, &d.rpc),
        }
    }
}
