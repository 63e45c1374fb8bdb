//! The one place that knows both sides: a benchmark test ([`TestInstance`]) becomes the safe
//! crate's [`ModelParams`] and [`ContextParams`] here, and the run options llama.cpp cannot be
//! given through it are refused here, before anything runs. A flag is either applied or an
//! error; none is only recorded. (Plain functions rather than `From` impls: both enums of each
//! pair live in other crates, the bench's library and the safe crate.)

use llamacpp::{ContextParams, ModelParams, ThreadPoolOptions};
use llamacpp_bench_core::params::{self as bp, BenchParams, Devices, TestInstance};

use crate::runner::parse_cpu_mask;
use crate::{Result, err};

/// `-fa` values as the safe crate's type.
fn flash_attn(v: bp::FlashAttn) -> llamacpp::FlashAttn {
    match v {
        bp::FlashAttn::Auto => llamacpp::FlashAttn::Auto,
        bp::FlashAttn::Disabled => llamacpp::FlashAttn::Off,
        bp::FlashAttn::Enabled => llamacpp::FlashAttn::On,
    }
}

/// `-sm` values as the safe crate's type.
fn split_mode(v: bp::SplitMode) -> llamacpp::SplitMode {
    match v {
        bp::SplitMode::None => llamacpp::SplitMode::None,
        bp::SplitMode::Layer => llamacpp::SplitMode::Layer,
        bp::SplitMode::Row => llamacpp::SplitMode::Row,
        bp::SplitMode::Tensor => llamacpp::SplitMode::Tensor,
    }
}

/// `-lm` values as the safe crate's type.
fn load_mode(v: bp::LoadMode) -> llamacpp::LoadMode {
    match v {
        bp::LoadMode::Auto => llamacpp::LoadMode::Auto,
        bp::LoadMode::None => llamacpp::LoadMode::Read,
        bp::LoadMode::Mmap => llamacpp::LoadMode::Mmap,
        bp::LoadMode::Mlock => llamacpp::LoadMode::Mlock,
        bp::LoadMode::MmapMlock => llamacpp::LoadMode::MmapMlock,
        bp::LoadMode::Dio => llamacpp::LoadMode::DirectIo,
    }
}

/// `-lzm` values as the safe crate's type.
fn lazy_mode(v: bp::LazyMode) -> llamacpp::LazyMode {
    match v {
        bp::LazyMode::On => llamacpp::LazyMode::On,
        bp::LazyMode::Auto => llamacpp::LazyMode::Auto,
        bp::LazyMode::Off => llamacpp::LazyMode::Off,
    }
}

/// `-ctk`/`-ctv` values as the safe crate's type.
fn cache_type(v: bp::CacheType) -> llamacpp::CacheType {
    match v {
        bp::CacheType::F16 => llamacpp::CacheType::F16,
        bp::CacheType::Bf16 => llamacpp::CacheType::Bf16,
        bp::CacheType::Q8_0 => llamacpp::CacheType::Q8_0,
        bp::CacheType::Q4_0 => llamacpp::CacheType::Q4_0,
        bp::CacheType::Q4_1 => llamacpp::CacheType::Q4_1,
        bp::CacheType::Q5_0 => llamacpp::CacheType::Q5_0,
        bp::CacheType::Q5_1 => llamacpp::CacheType::Q5_1,
        bp::CacheType::Iq4Nl => llamacpp::CacheType::Iq4Nl,
    }
}

/// Refuses what this benchmark cannot do, naming the flag: run options with no setter in the
/// safe crate, and test values that only upstream's `common` library implements.
pub fn check_supported(p: &BenchParams) -> Result<()> {
    let mut refused = Vec::new();
    if p.numa.is_some() {
        refused.push("--numa (NUMA placement is not exposed by the safe crate)");
    }
    if p.prio != 0 {
        refused.push("--prio (process and thread priority is not set by this benchmark)");
    }
    if p.n_cpu_moe.iter().any(|&n| n != 0) {
        refused.push("-ncmoe (use -ot with an `ffn_(up|down|gate)_exps` pattern instead)");
    }
    if p.fit_target.iter().any(|&v| v != 0) || p.fit_min_ctx.iter().any(|&v| v != 0) {
        refused.push(
            "-fitt/-fitc (fitting to device memory is upstream's common library, not the C API)",
        );
    }
    if !refused.is_empty() {
        return Err(format!("not supported: {}", refused.join("; ")));
    }
    // `-rpc` is applied (the servers are registered before the first model loads): only its
    // endpoints' syntax is checked here, before anything runs.
    p.rpc.iter().try_for_each(|e| crate::rpc::check_endpoint(e))
}

/// How the test's model is loaded: every model-loading value of the test.
pub fn model_params(inst: &TestInstance) -> Result<ModelParams> {
    let mut m = ModelParams::default()
        .n_gpu_layers(inst.n_gpu_layers)
        .split_mode(split_mode(inst.split_mode))
        .main_gpu(inst.main_gpu)
        .load_mode(load_mode(inst.load_mode))
        .lazy_mode(lazy_mode(inst.lazy_mode))
        .no_host(inst.no_host)
        .extra_buffer_types(inst.repack);
    m = match &inst.devices {
        Devices::Auto => m,
        Devices::None => m.devices(&[]).map_err(err)?,
        Devices::List(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            m.devices(&names).map_err(err)?
        }
    };
    if !inst.tensor_split.0.is_empty() {
        m = m.tensor_split(&inst.tensor_split.0).map_err(err)?;
    }
    for o in &inst.tensor_buft_overrides.0 {
        // Upstream names buffer types; `CPU` is host memory, the others are devices' own.
        let device = (o.buffer_type != "CPU").then_some(o.buffer_type.as_str());
        m = m.tensor_buffer_override(&o.pattern, device).map_err(err)?;
    }
    Ok(m)
}

/// The test's context: sized to fit it exactly (as upstream), on a persistent thread pool.
pub fn context_params(inst: &TestInstance) -> Result<ContextParams> {
    let positive = |v: i32, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("{what} must be positive, got {v}"))
    };
    Ok(ContextParams::default()
        .n_ctx(inst.n_ctx())
        .n_batch(positive(inst.n_batch, "-b")?)
        .n_ubatch(positive(inst.n_ubatch, "-ub")?)
        .n_threads(inst.n_threads)
        .type_k(cache_type(inst.type_k))
        .type_v(cache_type(inst.type_v))
        .flash_attn(flash_attn(inst.flash_attn))
        .offload_kqv(!inst.no_kv_offload)
        .op_offload(!inst.no_op_offload)
        .embeddings(inst.embeddings)
        .no_perf(true)
        // As upstream's llama-bench: CPU workers stay alive between graphs.
        .thread_pool_options(ThreadPoolOptions {
            poll: u32::try_from(inst.poll.clamp(0, 100)).unwrap_or(50),
            strict_cpu: inst.cpu_strict,
            cpu_mask: parse_cpu_mask(&inst.cpu_mask)?,
        }))
}

#[cfg(test)]
mod tests {
    //! One test per flag: the value given on the command line is in the parameters handed to
    //! llama.cpp (their `Debug` prints the C struct's fields), or the flag is refused.

    use llamacpp_bench_core::params::BenchParams;

    use super::*;

    /// The first test of `args` (upstream llama-bench flags).
    fn inst(args: &[&str]) -> TestInstance {
        let p = BenchParams::parse_args(args.iter().map(|s| s.to_string())).unwrap();
        check_supported(&p).unwrap();
        p.instances().into_iter().next().unwrap()
    }

    fn model(args: &[&str]) -> String {
        format!("{:?}", model_params(&inst(args)).unwrap())
    }

    fn context(args: &[&str]) -> String {
        format!("{:?}", context_params(&inst(args)).unwrap())
    }

    fn refused(args: &[&str]) -> String {
        let p = BenchParams::parse_args(args.iter().map(|s| s.to_string())).unwrap();
        check_supported(&p).unwrap_err()
    }

    #[test]
    fn model_loading_flags_reach_llama() {
        assert!(model(&["-ngl", "7"]).contains("n_gpu_layers: 7"));
        assert!(model(&["-mg", "1"]).contains("main_gpu: 1"));
        // llama_split_mode: none 0, layer 1, row 2
        assert!(model(&["-sm", "none"]).contains("split_mode: 0"));
        assert!(model(&["-sm", "row"]).contains("split_mode: 2"));
        assert!(model(&[]).contains("split_mode: 1"));
        // llama_load_mode: none 0, mmap 1, direct I/O 4
        assert!(model(&["-lm", "none"]).contains("load_mode: 0"));
        assert!(model(&["-lm", "dio"]).contains("load_mode: 4"));
        assert!(model(&["-mmp", "0"]).contains("load_mode: 0"));
        // llama_lazy_mode: off 0, on 2
        assert!(model(&["-lzm", "off"]).contains("lazy_mode: 0"));
        assert!(model(&["-lzm", "on"]).contains("lazy_mode: 2"));
        assert!(model(&["--no-host", "1"]).contains("no_host: true"));
        assert!(model(&["--no-host", "0"]).contains("no_host: false"));
        assert!(model(&["--repack", "0"]).contains("use_extra_bufts: false"));
        assert!(model(&["--repack", "1"]).contains("use_extra_bufts: true"));
        assert!(model(&["-ts", "3/1"]).contains("tensor_split: Some([3.0, 1.0"));
        assert!(model(&[]).contains("tensor_split: None"));
        assert!(model(&["-dev", "none"]).contains("devices: Some(0)"));
        assert!(model(&["-dev", "CPU"]).contains("devices: Some(1)"));
        assert!(model(&[]).contains("devices: None"));
        assert!(model(&["-ot", "exps=CPU;attn=CPU"]).contains("tensor_overrides: 2"));
    }

    #[test]
    fn unknown_devices_and_buffer_types_are_errors() {
        let e = model_params(&inst(&["-dev", "NoSuchGPU"])).unwrap_err();
        assert!(e.contains("NoSuchGPU"), "{e}");
        let e = model_params(&inst(&["-ot", "exps=NoSuchGPU"])).unwrap_err();
        assert!(e.contains("NoSuchGPU"), "{e}");
    }

    #[test]
    fn context_flags_reach_llama() {
        let c = context(&[
            "-p", "64", "-n", "16", "-d", "8", "-b", "32", "-ub", "16", "-t", "3",
        ]);
        // the first test is pp64 at depth 8: its context holds exactly 72 tokens
        for want in ["n_ctx: 72", "n_batch: 32", "n_ubatch: 16", "n_threads: 3"] {
            assert!(c.contains(want), "{want} in {c}");
        }
        // ggml_type: f16 1, q8_0 8, q4_0 2
        let c = context(&["-ctk", "q8_0", "-ctv", "q4_0"]);
        assert!(c.contains("type_k: 8") && c.contains("type_v: 2"), "{c}");
        assert!(context(&["-fa", "1"]).contains("flash_attn_type: 1"));
        assert!(context(&["-fa", "0"]).contains("flash_attn_type: 0"));
        assert!(context(&[]).contains("flash_attn_type: -1"));
        assert!(context(&["-nkvo", "1"]).contains("offload_kqv: false"));
        assert!(context(&[]).contains("offload_kqv: true"));
        assert!(context(&["-nopo", "1"]).contains("op_offload: false"));
        assert!(context(&[]).contains("op_offload: true"));
        assert!(context(&["-embd", "1"]).contains("embeddings: true"));
    }

    #[test]
    fn cpu_placement_flags_reach_the_thread_pool() {
        let c = context(&["-C", "0x3", "--cpu-strict", "1", "--poll", "7"]);
        for want in [
            "poll: 7",
            "strict_cpu: true",
            "cpu_mask: [true, true, false, false]",
        ] {
            assert!(c.contains(want), "{want} in {c}");
        }
    }

    #[test]
    fn malformed_rpc_endpoints_are_refused_before_anything_runs() {
        for bad in ["127.0.0.1", "127.0.0.1:0", "[::1]:50052", "host:port"] {
            let e = refused(&["-rpc", bad]);
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_without_a_road_to_llama_are_refused() {
        for (args, flag) in [
            (&["--numa", "distribute"][..], "--numa"),
            (&["--prio", "2"][..], "--prio"),
            (&["-ncmoe", "4"][..], "-ncmoe"),
            (&["-fitt", "512"][..], "-fitt"),
            (&["-fitc", "4096"][..], "-fitc"),
        ] {
            let e = refused(args);
            assert!(e.contains(flag), "{args:?}: {e}");
        }
        // their defaults are accepted, and -rpc with well-formed endpoints (applied by the run)
        for args in [
            &["-rpc", "127.0.0.1:50052,localhost:50053"][..],
            &["--prio", "0"][..],
            &["-ncmoe", "0"][..],
            &["-fitt", "0"][..],
        ] {
            let p = BenchParams::parse_args(args.iter().map(|s| s.to_string())).unwrap();
            check_supported(&p).unwrap();
        }
    }
}
