//! One benchmark test, and the expansion of the parameters into all of them.

use super::BenchParams;
use super::values::{
    CacheType, Devices, FlashAttn, LazyMode, LoadMode, SplitMode, TensorOverrides, TensorSplit,
};
use crate::record::test_name;

/// The settings of one test: one value of every parameter. It travels to a
/// `compare` worker as it is (serialised), and `to_llama` in the app turns it
/// into the safe crate's model and context parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestInstance {
    /// Model file.
    pub model: String,
    /// Prompt tokens processed (0 for a generation test).
    pub n_prompt: i32,
    /// Tokens generated one at a time (0 for a prompt test).
    pub n_gen: i32,
    /// Tokens already in the context when the timed part starts.
    pub n_depth: i32,
    /// Logical batch size.
    pub n_batch: i32,
    /// Physical batch size.
    pub n_ubatch: i32,
    /// K cache type.
    pub type_k: CacheType,
    /// V cache type.
    pub type_v: CacheType,
    /// Threads.
    pub n_threads: i32,
    /// CPU affinity mask (hex text, as given).
    pub cpu_mask: String,
    /// Strict CPU placement.
    pub cpu_strict: bool,
    /// Polling level (0...100).
    pub poll: i32,
    /// Layers offloaded to the GPU (negative: all).
    pub n_gpu_layers: i32,
    /// MoE layers whose expert tensors stay on the CPU.
    pub n_cpu_moe: i32,
    /// Multi-GPU split mode.
    pub split_mode: SplitMode,
    /// How the model file is loaded.
    pub load_mode: LoadMode,
    /// On-demand tensor reading.
    pub lazy_mode: LazyMode,
    /// Main GPU.
    pub main_gpu: i32,
    /// Keep the KV cache in host memory.
    pub no_kv_offload: bool,
    /// Flash attention.
    pub flash_attn: FlashAttn,
    /// Devices to offload to.
    pub devices: Devices,
    /// Share of each device.
    pub tensor_split: TensorSplit,
    /// Tensor buffer-type overrides.
    pub tensor_buft_overrides: TensorOverrides,
    /// Embeddings mode.
    pub embeddings: bool,
    /// Disable operation offload.
    pub no_op_offload: bool,
    /// Bypass the host buffer.
    pub no_host: bool,
    /// Weight repacking (llama.cpp's extra buffer types).
    pub repack: bool,
    /// `--fit-target` margin per device in MiB (0: do not fit).
    pub fit_target: u64,
    /// `--fit-ctx` minimum context (0: do not fit).
    pub fit_min_ctx: u32,
}

impl TestInstance {
    /// The context size the test needs: `n_prompt + n_gen + n_depth`.
    pub fn n_ctx(&self) -> u32 {
        let total = i64::from(self.n_prompt) + i64::from(self.n_gen) + i64::from(self.n_depth);
        u32::try_from(total.max(0)).unwrap_or(u32::MAX)
    }

    /// The markdown test name: `pp512`, `tg128`, `pp512+tg128`, with ` @ d<depth>`.
    pub fn test_name(&self) -> String {
        test_name(self.n_prompt, self.n_gen, self.n_depth)
    }

    /// Whether `--fit-target`/`--fit-ctx` ask for fitting (either differs from 0).
    pub fn wants_fit(&self) -> bool {
        self.fit_target != 0 || self.fit_min_ctx != 0
    }

    /// Whether `other` loads the model with the same parameters, so the runner
    /// can keep the loaded model (upstream's `equal_mparams`).
    pub fn same_model_params(&self, other: &TestInstance) -> bool {
        self.model == other.model
            && self.n_gpu_layers == other.n_gpu_layers
            && self.n_cpu_moe == other.n_cpu_moe
            && self.split_mode == other.split_mode
            && self.main_gpu == other.main_gpu
            && self.tensor_split == other.tensor_split
            && self.load_mode == other.load_mode
            && self.lazy_mode == other.lazy_mode
            && self.devices == other.devices
            && self.no_host == other.no_host
            && self.repack == other.repack
            && self.tensor_buft_overrides == other.tensor_buft_overrides
    }
}

/// Expands `p` into its tests; the order is documented on
/// [`BenchParams::instances`]. Lazy mode and repack are not in upstream's loop
/// at the revision this follows; they sit next to the other model-loading
/// parameters.
pub fn expand(p: &BenchParams) -> Vec<TestInstance> {
    let mut out = Vec::new();
    for m in &p.model {
        for &fit_target in &p.fit_target {
            for &fit_min_ctx in &p.fit_min_ctx {
                for &n_gpu_layers in &p.n_gpu_layers {
                    for &n_cpu_moe in &p.n_cpu_moe {
                        let base = Partial {
                            model: m,
                            fit_target,
                            fit_min_ctx,
                            n_gpu_layers,
                            n_cpu_moe,
                        };
                        expand_model_loading(p, &base, &mut out);
                    }
                }
            }
        }
    }
    out
}

/// The outer loop values, carried inwards.
struct Partial<'a> {
    model: &'a str,
    fit_target: u64,
    fit_min_ctx: u32,
    n_gpu_layers: i32,
    n_cpu_moe: i32,
}

/// The model-loading loops (split mode to repack), then the context loops.
fn expand_model_loading(p: &BenchParams, base: &Partial<'_>, out: &mut Vec<TestInstance>) {
    for &split_mode in &p.split_mode {
        for &load_mode in &p.load_mode {
            for &lazy_mode in &p.lazy_mode {
                for &main_gpu in &p.main_gpu {
                    for devices in &p.devices {
                        for tensor_split in &p.tensor_split {
                            for ot in &p.tensor_buft_overrides {
                                for &no_host in &p.no_host {
                                    for &repack in &p.repack {
                                        let proto = TestInstance {
                                            model: base.model.to_owned(),
                                            n_prompt: 0,
                                            n_gen: 0,
                                            n_depth: 0,
                                            n_batch: 0,
                                            n_ubatch: 0,
                                            type_k: CacheType::F16,
                                            type_v: CacheType::F16,
                                            n_threads: 0,
                                            cpu_mask: String::new(),
                                            cpu_strict: false,
                                            poll: 0,
                                            n_gpu_layers: base.n_gpu_layers,
                                            n_cpu_moe: base.n_cpu_moe,
                                            split_mode,
                                            load_mode,
                                            lazy_mode,
                                            main_gpu,
                                            no_kv_offload: false,
                                            flash_attn: FlashAttn::Auto,
                                            devices: devices.clone(),
                                            tensor_split: tensor_split.clone(),
                                            tensor_buft_overrides: ot.clone(),
                                            embeddings: false,
                                            no_op_offload: false,
                                            no_host,
                                            repack,
                                            fit_target: base.fit_target,
                                            fit_min_ctx: base.fit_min_ctx,
                                        };
                                        expand_context(p, &proto, out);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The context loops (embeddings to poll), then the tests of each combination.
fn expand_context(p: &BenchParams, proto: &TestInstance, out: &mut Vec<TestInstance>) {
    for &embeddings in &p.embeddings {
        for &no_op_offload in &p.no_op_offload {
            for &n_batch in &p.n_batch {
                for &n_ubatch in &p.n_ubatch {
                    for &type_k in &p.type_k {
                        for &type_v in &p.type_v {
                            for &no_kv_offload in &p.no_kv_offload {
                                for &flash_attn in &p.flash_attn {
                                    let ctx = TestInstance {
                                        embeddings,
                                        no_op_offload,
                                        n_batch,
                                        n_ubatch,
                                        type_k,
                                        type_v,
                                        no_kv_offload,
                                        flash_attn,
                                        ..proto.clone()
                                    };
                                    expand_threads(p, &ctx, out);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The thread loops (threads to poll, with depth), then the tests.
fn expand_threads(p: &BenchParams, ctx: &TestInstance, out: &mut Vec<TestInstance>) {
    for &n_threads in &p.n_threads {
        for cpu_mask in &p.cpu_mask {
            for &cpu_strict in &p.cpu_strict {
                for &n_depth in &p.n_depth {
                    for &poll in &p.poll {
                        let inst = TestInstance {
                            n_threads,
                            cpu_mask: cpu_mask.clone(),
                            cpu_strict,
                            n_depth,
                            poll,
                            ..ctx.clone()
                        };
                        push_tests(p, &inst, out);
                    }
                }
            }
        }
    }
}

/// The prompt, generation and prompt+generation tests of one combination.
fn push_tests(p: &BenchParams, inst: &TestInstance, out: &mut Vec<TestInstance>) {
    let with = |n_prompt, n_gen| TestInstance {
        n_prompt,
        n_gen,
        ..inst.clone()
    };
    out.extend(p.n_prompt.iter().filter(|&&n| n != 0).map(|&n| with(n, 0)));
    out.extend(p.n_gen.iter().filter(|&&n| n != 0).map(|&n| with(0, n)));
    out.extend(
        p.n_pg
            .iter()
            .filter(|&&(pp, tg)| pp != 0 || tg != 0)
            .map(|&(pp, tg)| with(pp, tg)),
    );
}
