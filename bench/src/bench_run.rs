//! The plain `llama-bench` run (in this process, on the linked build) and
//! `llama-bench compare` (both builds, in worker processes).

use std::io::Write;

use llamacpp_bench::live::{CompareRow, compare_rows_markdown};
use llamacpp_bench::output;
use llamacpp_bench::params::{BenchParams, DEFAULT_MODEL, OutputFormat, TestInstance};
use llamacpp_bench::record::{BuildInfo, ModelInfo, SystemInfo, TestResult};

use crate::compare::{self as cmp};
use crate::models;
use crate::roofline;
use crate::rpc::{self, LocalServers, RpcPlan};
use crate::runner::Prepared;
use crate::to_llama;
use crate::worker::Request;
use crate::{Result, err};

/// Parses upstream llama-bench flags (after `-ngl`-style normalisation).
fn parse_params(args: &[String]) -> Result<BenchParams> {
    match BenchParams::parse_args(args.iter().cloned()) {
        Ok(p) => to_llama::check_supported(&p).map(|()| p),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => Err(e.to_string()),
    }
}

fn system_info() -> SystemInfo {
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
fn resolve_models(p: &mut BenchParams) -> Result<()> {
    if p.model == [DEFAULT_MODEL.to_string()] && !std::path::Path::new(DEFAULT_MODEL).exists() {
        p.model = vec![models::default_model()?.to_string_lossy().into_owned()];
    }
    Ok(())
}

/// `llama-bench [flags]`: upstream's benchmark on the build this binary links.
pub fn run(args: &[String]) -> Result<()> {
    let mut p = parse_params(args)?;
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
        commit: crate::worker::loaded_commit(),
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

/// Options of `compare` that upstream's llama-bench does not have.
struct CompareOpts {
    check: bool,
    steps: usize,
    max_nmse: f64,
    min_rel: f64,
    /// `--min-speedup TEST=RATIO`: the patched build must reach this speedup on that test.
    min_speedup: Vec<(String, f64)>,
    /// `--max-nodes-ratio R`: patched decode nodes must be at most R x upstream's.
    max_nodes_ratio: Option<f64>,
    /// `--rpc-upstream`, `--rpc-local`, `--rpc-threads`.
    rpc: rpc::CompareRpc,
}

fn take_compare_opts(args: &[String]) -> Result<(CompareOpts, Vec<String>)> {
    let mut o = CompareOpts {
        check: false,
        steps: 32,
        max_nmse: 1e-6,
        min_rel: 0.03,
        min_speedup: Vec::new(),
        max_nodes_ratio: None,
        rpc: rpc::CompareRpc::default(),
    };
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        if o.rpc.take(a, || value(a))? {
            continue;
        }
        match a.as_str() {
            "--check" => o.check = true,
            "--steps" => o.steps = value("--steps")?.parse().map_err(err)?,
            "--max-nmse" => o.max_nmse = value("--max-nmse")?.parse().map_err(err)?,
            "--min-rel" => o.min_rel = value("--min-rel")?.parse().map_err(err)?,
            "--min-speedup" => {
                let v = value("--min-speedup")?;
                let (test, ratio) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--min-speedup wants TEST=RATIO, got {v}"))?;
                o.min_speedup
                    .push((test.to_string(), ratio.parse().map_err(err)?));
            }
            "--max-nodes-ratio" => {
                o.max_nodes_ratio = Some(value("--max-nodes-ratio")?.parse().map_err(err)?)
            }
            _ => rest.push(a.clone()),
        }
    }
    Ok((o, rest))
}

/// The RPC servers of each build (`[upstream, patched]`), starting the local ones `--rpc-local`
/// asks for (returned: they are killed when dropped).
fn rpc_servers(
    o: &rpc::CompareRpc,
    p: &BenchParams,
) -> Result<([Vec<String>; 2], Vec<LocalServers>)> {
    match o.plan(&p.rpc, &p.n_threads)? {
        RpcPlan::None => Ok((Default::default(), Vec::new())),
        RpcPlan::Given(servers) => Ok((servers, Vec::new())),
        RpcPlan::Local { servers, threads } => {
            let mut local = Vec::new();
            for (build, dir) in cmp::build_dirs()? {
                let l = LocalServers::start(&build, &dir, servers, threads, p.verbose)?;
                let list: Vec<String> = l
                    .endpoints()
                    .iter()
                    .zip(l.pids())
                    .map(|(e, pid)| format!("{e} (pid {pid})"))
                    .collect();
                eprintln!(
                    "compare: {build} build: {servers} local RPC server(s), {threads} thread(s) each: {}",
                    list.join(", ")
                );
                local.push(l);
            }
            let endpoints = |i: usize| {
                local
                    .get(i)
                    .map_or_else(Vec::new, |l| l.endpoints().to_vec())
            };
            Ok(([endpoints(0), endpoints(1)], local))
        }
    }
}

/// The backends compiled in, `RPC` only when the run uses servers (every bench has it).
fn header_backends(rpc: bool) -> String {
    llamacpp_sys::build_info::BACKENDS
        .iter()
        .filter(|b| rpc || **b != "RPC")
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// `RPC0=127.0.0.1:50052, ...` from a worker's answer to [`Request::Rpc`].
fn rpc_devices_text(devices: &serde_json::Value) -> String {
    devices
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["name"].as_str().unwrap_or("?"),
                        d["description"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `llama-bench compare [flags]` or `llama-bench compare A.jsonl B.jsonl`.
pub fn compare(args: &[String]) -> Result<()> {
    if args.len() == 2
        && args
            .iter()
            .all(|a| !a.starts_with('-') && std::path::Path::new(a).is_file())
    {
        let c = llamacpp_bench::saved_compare::compare_files(args[0].as_ref(), args[1].as_ref())
            .map_err(err)?;
        println!("{}", c.to_markdown());
        return Ok(());
    }
    let (opts, rest) = take_compare_opts(args)?;
    let mut p = parse_params(&rest)?;
    resolve_models(&mut p)?;
    // Each build's servers; local ones live (and are killed) with `local`.
    let (servers, mut local) = rpc_servers(&opts.rpc, &p)?;
    let instances = p.instances();
    let membw =
        roofline::measure_read_bandwidth(p.n_threads.first().copied().unwrap_or(2).max(1) as usize);
    let mut rows: Vec<CompareRow> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut header = String::new();
    let mut i = 0;
    while i < instances.len() {
        let first = &instances[i];
        let group: Vec<&TestInstance> = instances[i..]
            .iter()
            .take_while(|t| t.same_model_params(first))
            .collect();
        i += group.len();
        for l in &mut local {
            l.check_alive()?;
        }
        let (mut workers, info) = cmp::start_workers(first, &servers)?;
        let model_type = info["desc"].as_str().unwrap_or("").to_string();
        let n_vocab = info["n_vocab"].as_u64().unwrap_or(0) as usize;
        if header.is_empty() {
            header = format!(
                "upstream build: {} | patched build: {} | CPU: {} ({} cores) | backends: {} | threads: {:?} | read bandwidth: {:.1} GB/s",
                info["build_commits"]["upstream"].as_str().unwrap_or("?"),
                info["build_commits"]["patched"].as_str().unwrap_or("?"),
                system_info().cpu_info,
                std::thread::available_parallelism().map_or(0, |n| n.get()),
                header_backends(!servers[0].is_empty()),
                p.n_threads,
                membw / 1e9
            );
            if !servers[0].is_empty() {
                header.push_str(&format!(
                    " | RPC devices: upstream {} / patched {}",
                    rpc_devices_text(&info["rpc_devices"]["upstream"]),
                    rpc_devices_text(&info["rpc_devices"]["patched"])
                ));
            }
            eprintln!("{header}");
        }
        // Correctness first: teacher-forced logits and greedy continuations.
        let n_threads = first.n_threads;
        let tokens: Vec<i32> = {
            let mut rng = crate::runner::TokenRng::new(1234);
            (0..opts.steps.max(8))
                .map(|_| rng.next(n_vocab.max(1) as i32))
                .collect()
        };
        let c = cmp::correctness(&mut workers, n_vocab, opts.steps, n_threads, &tokens)?;
        let greedy_match = c.greedy[0] == c.greedy[1];
        notes.push(format!(
            "{model_type}: teacher-forced {} steps: max |Δlogit| {:.3e}, max NMSE {:.3e} (first step {:.3e}); greedy continuations {}",
            c.steps,
            c.max_abs_diff,
            c.max_nmse,
            c.first_nmse,
            if greedy_match { "identical" } else { "differ" }
        ));
        if opts.check && c.max_nmse > opts.max_nmse {
            failures.push(format!(
                "{model_type}: logits NMSE {:.3e} > {:.1e}",
                c.max_nmse, opts.max_nmse
            ));
        }
        if opts.check {
            let decode: Vec<crate::checks::GraphCounts> = workers
                .iter_mut()
                .map(|w| {
                    w.call(&Request::Graph {
                        n_tokens: 1,
                        n_threads,
                    })
                    .and_then(|v| serde_json::from_value(v).map_err(err))
                })
                .collect::<Result<_>>()?;
            notes.push(format!(
                "{model_type}: decode graph nodes {} -> {}, copy bytes {} -> {}",
                decode[0].n_nodes, decode[1].n_nodes, decode[0].copy_bytes, decode[1].copy_bytes
            ));
            if decode[1].n_nodes > decode[0].n_nodes || decode[1].copy_bytes > decode[0].copy_bytes
            {
                failures.push(format!(
                    "{model_type}: patched decode graph is larger than upstream's"
                ));
            }
            if let Some(r) = opts.max_nodes_ratio
                && decode[1].n_nodes as f64 > r * decode[0].n_nodes as f64
            {
                failures.push(format!(
                    "{model_type}: patched decode nodes {} > {r} x upstream's {}",
                    decode[1].n_nodes, decode[0].n_nodes
                ));
            }
        }
        let weights = roofline::weight_bytes(&first.model).ok();
        for inst in group {
            // A bar on stderr: one step per timed repetition of either build.
            let reps = p.repetitions.max(1) as usize;
            let bar = indicatif::ProgressBar::new(2 * reps as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(inst.test_name());
            let progress = |msg: &str| {
                bar.set_message(msg.to_string());
                bar.inc(1);
            };
            let [up, pa] = cmp::measure(&mut workers, inst, reps, p.no_warmup, &progress)?;
            bar.finish_and_clear();
            let build = |w: &str| BuildInfo {
                commit: info["build_commits"][w].as_str().unwrap_or("").into(),
                number: 0,
            };
            let minfo = ModelInfo {
                model_type: model_type.clone(),
                model_size: info["size"].as_u64().unwrap_or(0),
                model_n_params: info["n_params"].as_u64().unwrap_or(0),
            };
            let sys = system_info();
            let mut ru = TestResult::new(inst, &build("upstream"), &sys, &minfo);
            ru.set_samples(up.ns);
            let mut rp = TestResult::new(inst, &build("patched"), &sys, &minfo);
            rp.set_samples(pa.ns);
            let mut row = CompareRow::new(&ru, &rp);
            row.model_type = model_type.clone();
            row.logits_max_abs_diff = Some(c.max_abs_diff);
            row.logits_nmse = Some(c.max_nmse);
            row.upstream_rpc = servers[0].clone();
            row.patched_rpc = servers[1].clone();
            if let (Some(w), true) = (weights, inst.n_gen > 0 && inst.n_prompt == 0) {
                let gbs = |ts: f64| w.per_token as f64 * ts / 1e9;
                notes.push(format!(
                    "{model_type} {}: weights read per token {:.1} MB -> upstream {:.1} GB/s ({:.0}% of {:.1} GB/s), patched {:.1} GB/s ({:.0}%)",
                    inst.test_name(),
                    w.per_token as f64 / 1e6,
                    gbs(row.upstream_ts),
                    100.0 * gbs(row.upstream_ts) * 1e9 / membw,
                    membw / 1e9,
                    gbs(row.patched_ts),
                    100.0 * gbs(row.patched_ts) * 1e9 / membw
                ));
            }
            let regressed = cmp::regressed(&row, p.repetitions.max(1) as usize, opts.min_rel);
            if opts.check && regressed {
                failures.push(format!(
                    "{model_type} {}: patched {:.2} t/s < upstream {:.2} t/s beyond noise",
                    row.test_name(),
                    row.patched_ts,
                    row.upstream_ts
                ));
            }
            for (test, min) in &opts.min_speedup {
                let speedup = row.patched_ts / row.upstream_ts;
                if opts.check && *test == row.test_name() && speedup < *min {
                    failures.push(format!(
                        "{model_type} {test}: speedup {speedup:.3} < required {min}"
                    ));
                }
            }
            rows.push(row);
        }
    }
    if opts.check {
        for (test, _) in &opts.min_speedup {
            if !rows.iter().any(|r| r.test_name() == *test) {
                failures.push(format!("--min-speedup {test}: no such test was run"));
            }
        }
    }
    match p.output {
        OutputFormat::Json | OutputFormat::Jsonl => {
            println!("{}", serde_json::to_string_pretty(&rows).map_err(err)?)
        }
        _ => {
            println!("{header}\n");
            print!("{}", compare_rows_markdown(&rows));
            println!();
            for n in &notes {
                println!("- {n}");
            }
        }
    }
    let _ = std::io::stdout().flush();
    if !failures.is_empty() {
        return Err(format!(
            "compare --check failed:\n  {}",
            failures.join("\n  ")
        ));
    }
    if opts.check {
        eprintln!("compare --check: passed");
    }
    Ok(())
}
