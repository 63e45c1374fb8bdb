//! The plain `llama-bench` run: upstream's benchmark, in this process, on the linked build.

use llamacpp_bench_core::output;
use llamacpp_bench_core::params::{BenchArgs, BenchParams, DEFAULT_MODEL, TestInstance};
use llamacpp_bench_core::record::{BuildInfo, ModelInfo, SystemInfo, TestResult};

use crate::models;
use crate::runner::Prepared;
use crate::to_llama;
use crate::{Result, err};

/// What llama.cpp reports of this machine, as upstream's records name it.
pub(crate) fn system_info() -> SystemInfo {
    let devs = llamacpp::backend::devices();
    let pick = |cpu: bool| {
        devs.iter()
            .filter(|d| (d.kind == llamacpp::backend::DeviceKind::Cpu) == cpu)
            .map(|d| d.description.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // As upstream's `get_backend`: the backends compiled in other than the CPU, and `RPC` only
    // once a server's devices are registered (the RPC backend is compiled into every bench).
    let mut backends: Vec<&str> = llamacpp_sys::build_info::BACKENDS
        .iter()
        .copied()
        .filter(|b| !matches!(*b, "CPU" | "RPC"))
        .collect();
    if devs.iter().any(|d| crate::rpc::is_rpc_device(&d.name)) {
        backends.push("RPC");
    }
    SystemInfo {
        cpu_info: pick(true),
        gpu_info: pick(false),
        backends: if backends.is_empty() {
            "CPU".into()
        } else {
            backends.join(",")
        },
    }
}

/// Replaces upstream's placeholder default model with the synthetic default.
pub(crate) fn resolve_models(p: &mut BenchParams) -> Result<()> {
    if p.model == [DEFAULT_MODEL.to_string()] && !std::path::Path::new(DEFAULT_MODEL).exists() {
        p.model = vec![models::default_model()?.to_string_lossy().into_owned()];
    }
    Ok(())
}

/// `llama-bench [run] [flags]`: upstream's benchmark on the build this binary links.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut p = args.resolve();
    to_llama::check_supported(&p)?;
    llamacpp::backend::set_logging(p.verbose);
    llamacpp::backend::log_to_stderr(p.verbose);
    // As upstream: every -rpc server is registered once, before devices are listed or a model
    // loads; their devices (RPC0, ...) are then in `gpu_info` and `-dev` can pick them.
    crate::rpc::register(&p.rpc)?;
    if p.list_devices {
        for d in llamacpp::backend::devices() {
            println!(
                "{}: {} ({} MiB, {} MiB free)",
                d.name,
                d.description,
                d.memory_total >> 20,
                d.memory_free >> 20
            );
        }
        return Ok(());
    }
    resolve_models(&mut p)?;
    let build = BuildInfo {
        commit: llamacpp::backend::build_commit(),
        number: 0,
    };
    let sys = system_info();
    let mut out_printer = output::create_printer(p.output, &p, &sys.backends, &build);
    let mut err_printer = output::create_printer(p.output_err, &p, &sys.backends, &build);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    if let Some(pr) = out_printer.as_mut() {
        pr.print_header(&mut stdout).map_err(err)?;
    }
    if let Some(pr) = err_printer.as_mut() {
        pr.print_header(&mut stderr).map_err(err)?;
    }
    let instances = p.instances();
    let mut loaded: Option<(TestInstance, llamacpp::Model)> = None;
    for (i, inst) in instances.iter().enumerate() {
        if p.progress {
            eprintln!(
                "llama-bench: test {}/{}: {}",
                i + 1,
                instances.len(),
                inst.test_name()
            );
        }
        if !loaded
            .as_ref()
            .is_some_and(|(prev, _)| prev.same_model_params(inst))
        {
            drop(loaded.take()); // free the previous model before loading the next
            let m =
                llamacpp::Model::load(&inst.model, to_llama::model_params(inst)?).map_err(err)?;
            loaded = Some((inst.clone(), m));
        }
        let Some((_, model)) = loaded.as_ref() else {
            continue;
        };
        let mut prepared = Prepared::new(model, inst, p.no_warmup)?;
        if p.delay > 0 {
            std::thread::sleep(std::time::Duration::from_secs(u64::from(p.delay)));
        }
        let samples = (0..p.repetitions.max(1))
            .map(|_| prepared.repetition())
            .collect::<Result<Vec<u64>>>()?;
        let info = ModelInfo {
            model_type: model.description(),
            model_size: model.size(),
            model_n_params: model.n_params(),
        };
        let mut r = TestResult::new(inst, &build, &sys, &info);
        r.set_samples(samples);
        if let Some(pr) = out_printer.as_mut() {
            pr.print_test(&mut stdout, &r).map_err(err)?;
        }
        if let Some(pr) = err_printer.as_mut() {
            pr.print_test(&mut stderr, &r).map_err(err)?;
        }
    }
    if let Some(pr) = out_printer.as_mut() {
        pr.print_footer(&mut stdout).map_err(err)?;
    }
    if let Some(pr) = err_printer.as_mut() {
        pr.print_footer(&mut stderr).map_err(err)?;
    }
    Ok(())
}
