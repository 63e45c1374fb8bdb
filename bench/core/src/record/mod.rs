//! One test's result, with upstream's field names, order and value text.
//!
//! The fields are those upstream llama-bench writes when built against the
//! pinned llama.cpp's API, in that order: its `llama_load_mode` and
//! `llama_lazy_mode` are reported as `load_mode` and `lazy_mode` (the text of
//! `-lm`/`-lzm`), which `compare-llama-bench.py` requires, where older
//! llama-benches wrote `use_mmap` and `use_direct_io`; JSON and JSONL add
//! `samples_ns` and `samples_ts`.
//!
//! Statistics follow upstream: `avg_ts` is the mean of the per-repetition rates
//! `1e9 * (n_prompt + n_gen) / ns`, not the rate of the mean time, and both
//! standard deviations are sample standard deviations (see [`stats`]).

mod cfmt;
mod fields;
mod flex;
pub mod stats;
mod time;

use serde::{Deserialize, Serialize};

use crate::params::TestInstance;

pub use cfmt::{fixed, fixed6, general6};
pub use fields::{FIELDS, FieldType, field_type};
pub use time::{now_rfc3339, rfc3339_utc};

/// The build that produced a result (`build_commit`, `build_number`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BuildInfo {
    /// llama.cpp's `BUILD_COMMIT` (for this workspace, e.g. `lcs2-0.1.161+p1a2b3c4`).
    pub commit: String,
    /// llama.cpp's `BUILD_NUMBER`.
    pub number: i64,
}

/// The machine a result comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    /// CPU and accelerator device descriptions joined by `, `.
    pub cpu_info: String,
    /// GPU device descriptions joined by `, `.
    pub gpu_info: String,
    /// Backend registry names other than CPU joined by `,` (`CPU` if none).
    pub backends: String,
}

/// What llama.cpp reports about the loaded model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `llama_model_desc`, e.g. `qwen3next 80B.A3B Q4_K - Medium`.
    pub model_type: String,
    /// `llama_model_size` in bytes.
    pub model_size: u64,
    /// `llama_model_n_params`.
    pub model_n_params: u64,
}

/// One test's result: upstream's fields in upstream's order.
///
/// Deserialization is lenient (see the module docs of the readers in
/// [`crate::output`]): values may be typed JSON or text, unknown fields are
/// ignored and missing ones take their `Default`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TestResult {
    /// llama.cpp build commit (`BUILD_COMMIT`).
    #[serde(deserialize_with = "flex::string")]
    pub build_commit: String,
    /// llama.cpp build number (`BUILD_NUMBER`).
    #[serde(deserialize_with = "flex::num")]
    pub build_number: i64,
    /// CPU (and accelerator) descriptions, `, `-joined.
    #[serde(deserialize_with = "flex::string")]
    pub cpu_info: String,
    /// GPU descriptions, `, `-joined (empty without GPUs).
    #[serde(deserialize_with = "flex::string")]
    pub gpu_info: String,
    /// Non-CPU backends, `,`-joined, or `CPU`.
    #[serde(deserialize_with = "flex::string")]
    pub backends: String,
    /// Model path as given with `-m`.
    #[serde(deserialize_with = "flex::string")]
    pub model_filename: String,
    /// Model description, e.g. `llama 7B Q4_0`.
    #[serde(deserialize_with = "flex::string")]
    pub model_type: String,
    /// Model size in bytes.
    #[serde(deserialize_with = "flex::num")]
    pub model_size: u64,
    /// Number of model parameters.
    #[serde(deserialize_with = "flex::num")]
    pub model_n_params: u64,
    /// Logical batch size.
    #[serde(deserialize_with = "flex::num")]
    pub n_batch: i32,
    /// Physical batch size.
    #[serde(deserialize_with = "flex::num")]
    pub n_ubatch: i32,
    /// Threads.
    #[serde(deserialize_with = "flex::num")]
    pub n_threads: i32,
    /// CPU affinity mask (hex text).
    #[serde(deserialize_with = "flex::string")]
    pub cpu_mask: String,
    /// Strict CPU placement.
    #[serde(deserialize_with = "flex::bool")]
    pub cpu_strict: bool,
    /// Polling level.
    #[serde(deserialize_with = "flex::num")]
    pub poll: i32,
    /// K cache type name.
    #[serde(deserialize_with = "flex::string")]
    pub type_k: String,
    /// V cache type name.
    #[serde(deserialize_with = "flex::string")]
    pub type_v: String,
    /// GPU layers (negative: all).
    #[serde(deserialize_with = "flex::num")]
    pub n_gpu_layers: i32,
    /// MoE layers whose experts stay on the CPU.
    #[serde(deserialize_with = "flex::num")]
    pub n_cpu_moe: i32,
    /// Split mode name.
    #[serde(deserialize_with = "flex::string")]
    pub split_mode: String,
    /// Main GPU.
    #[serde(deserialize_with = "flex::num")]
    pub main_gpu: i32,
    /// KV cache kept in host memory.
    #[serde(deserialize_with = "flex::bool")]
    pub no_kv_offload: bool,
    /// `-1` auto, `0` off, `1` on.
    #[serde(deserialize_with = "flex::num")]
    pub flash_attn: i32,
    /// Devices: `auto`, `none` or names joined by `/`.
    #[serde(deserialize_with = "flex::string")]
    pub devices: String,
    /// Tensor split, `%.2f` shares joined by `/`.
    #[serde(deserialize_with = "flex::string")]
    pub tensor_split: String,
    /// Overrides, `pattern=buft` joined by `;`, or `none`.
    #[serde(deserialize_with = "flex::string")]
    pub tensor_buft_overrides: String,
    /// How the model file was loaded (`-lm`: `auto`, `mmap`, `none`, `dio`, ...).
    #[serde(deserialize_with = "flex::string")]
    pub load_mode: String,
    /// On-demand tensor reading (`-lzm`: `auto`, `on`, `off`).
    #[serde(deserialize_with = "flex::string")]
    pub lazy_mode: String,
    /// Embeddings mode.
    #[serde(deserialize_with = "flex::bool")]
    pub embeddings: bool,
    /// Upstream types this one as an integer; it is written as `0`/`1`.
    #[serde(deserialize_with = "flex::bool", serialize_with = "flex::bool_as_int")]
    pub no_op_offload: bool,
    /// Host buffer bypassed.
    #[serde(deserialize_with = "flex::bool")]
    pub no_host: bool,
    /// Weight repacking enabled.
    #[serde(deserialize_with = "flex::bool")]
    pub repack: bool,
    /// `--fit-target` in MiB (0: off).
    #[serde(deserialize_with = "flex::num")]
    pub fit_target: u64,
    /// `--fit-ctx` (0: off).
    #[serde(deserialize_with = "flex::num")]
    pub fit_min_ctx: u32,
    /// Prompt tokens timed.
    #[serde(deserialize_with = "flex::num")]
    pub n_prompt: i32,
    /// Generated tokens timed.
    #[serde(deserialize_with = "flex::num")]
    pub n_gen: i32,
    /// Context depth before the timed part.
    #[serde(deserialize_with = "flex::num")]
    pub n_depth: i32,
    /// Start of the test, RFC 3339 UTC.
    #[serde(deserialize_with = "flex::string")]
    pub test_time: String,
    /// Mean time of a repetition, ns.
    #[serde(deserialize_with = "flex::num")]
    pub avg_ns: u64,
    /// Sample standard deviation of the times, ns.
    #[serde(deserialize_with = "flex::num")]
    pub stddev_ns: u64,
    /// Mean of the per-repetition tokens per second.
    #[serde(deserialize_with = "flex::num")]
    pub avg_ts: f64,
    /// Sample standard deviation of the per-repetition rates.
    #[serde(deserialize_with = "flex::num")]
    pub stddev_ts: f64,
    /// Nanoseconds of each repetition (JSON/JSONL only; empty when read back
    /// from CSV, SQL or markdown).
    pub samples_ns: Vec<u64>,
    /// Tokens per second of each repetition (JSON/JSONL only).
    pub samples_ts: Vec<f64>,
}

impl TestResult {
    /// A result for `inst` with no samples yet; `test_time` is now.
    ///
    /// The list-valued settings are written as upstream
    /// writes them (`devices` `auto`, `tensor_split` `0.00`, overrides `none`).
    /// Add the timings with [`TestResult::set_samples`].
    pub fn new(
        inst: &TestInstance,
        build: &BuildInfo,
        system: &SystemInfo,
        model: &ModelInfo,
    ) -> Self {
        TestResult {
            build_commit: build.commit.clone(),
            build_number: build.number,
            cpu_info: system.cpu_info.clone(),
            gpu_info: system.gpu_info.clone(),
            backends: system.backends.clone(),
            model_filename: inst.model.clone(),
            model_type: model.model_type.clone(),
            model_size: model.model_size,
            model_n_params: model.model_n_params,
            n_batch: inst.n_batch,
            n_ubatch: inst.n_ubatch,
            n_threads: inst.n_threads,
            cpu_mask: inst.cpu_mask.clone(),
            cpu_strict: inst.cpu_strict,
            poll: inst.poll,
            type_k: inst.type_k.name().to_owned(),
            type_v: inst.type_v.name().to_owned(),
            n_gpu_layers: inst.n_gpu_layers,
            n_cpu_moe: inst.n_cpu_moe,
            split_mode: inst.split_mode.name().to_owned(),
            main_gpu: inst.main_gpu,
            no_kv_offload: inst.no_kv_offload,
            flash_attn: inst.flash_attn.result_value(),
            devices: inst.devices.to_string(),
            tensor_split: inst.tensor_split.to_string(),
            tensor_buft_overrides: inst.tensor_buft_overrides.to_string(),
            load_mode: inst.load_mode.name().to_owned(),
            lazy_mode: inst.lazy_mode.name().to_owned(),
            embeddings: inst.embeddings,
            no_op_offload: inst.no_op_offload,
            no_host: inst.no_host,
            repack: inst.repack,
            fit_target: inst.fit_target,
            fit_min_ctx: inst.fit_min_ctx,
            n_prompt: inst.n_prompt,
            n_gen: inst.n_gen,
            n_depth: inst.n_depth,
            test_time: now_rfc3339(),
            ..TestResult::default()
        }
    }

    /// Records the repetition times and recomputes every statistic from them.
    pub fn set_samples(&mut self, samples_ns: Vec<u64>) {
        let n_tokens = i64::from(self.n_prompt) + i64::from(self.n_gen);
        self.samples_ts = stats::samples_ts(&samples_ns, n_tokens);
        self.avg_ns = stats::avg_ns(&samples_ns);
        self.stddev_ns = stats::stddev_ns(&samples_ns);
        self.avg_ts = stats::avg_f64(&self.samples_ts);
        self.stddev_ts = stats::stddev_f64(&self.samples_ts);
        self.samples_ns = samples_ns;
    }

    /// The markdown test name: `pp512`, `tg128`, `pp512+tg128`, with ` @ d<depth>`.
    pub fn test_name(&self) -> String {
        test_name(self.n_prompt, self.n_gen, self.n_depth)
    }
}

/// The name of a test as upstream's markdown shows it: `pp512`, `tg128` or
/// `pp512+tg128`, followed by ` @ d<depth>` when the depth is not zero.
pub fn test_name(n_prompt: i32, n_gen: i32, n_depth: i32) -> String {
    let mut name = if n_prompt > 0 && n_gen == 0 {
        format!("pp{n_prompt}")
    } else if n_gen > 0 && n_prompt == 0 {
        format!("tg{n_gen}")
    } else {
        format!("pp{n_prompt}+tg{n_gen}")
    };
    if n_depth > 0 {
        name.push_str(&format!(" @ d{n_depth}"));
    }
    name
}

/// The name `compare-llama-bench.py` gives a test: as [`test_name`] but with
/// `@d<depth>` (no spaces) when the depth is not zero.
pub fn compare_test_name(n_prompt: i32, n_gen: i32, n_depth: i32) -> String {
    let base = test_name(n_prompt, n_gen, 0);
    if n_depth != 0 {
        format!("{base}@d{n_depth}")
    } else {
        base
    }
}

#[cfg(test)]
mod tests;
