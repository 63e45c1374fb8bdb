//! `llama-bench compare`: the same tests on the upstream and the patched build, each in its
//! own worker process, repetitions interleaved so machine drift hits both alike.
//!
//! [`run`] goes through named stages: plan the run (flags, models, RPC servers), then for
//! each group of tests that share a model: start a [`Pair`] of workers, check correctness
//! (logits, greedy continuations, graph size), measure each test; last, report. The rules of
//! `--check` are pure functions in `llamacpp_bench_core::live::check`.

mod args;
mod report;
mod workers;

pub use args::CompareArgs;
pub use workers::{Pair, build_dirs};

use llamacpp_bench_core::live::CompareRow;
use llamacpp_bench_core::params::{BenchParams, TestInstance};
use llamacpp_bench_core::record::{BuildInfo, ModelInfo, TestResult};

use crate::roofline;
use crate::rpc::{LocalServers, RpcPlan};
use crate::run::{resolve_models, system_info};
use crate::to_llama;
use crate::{Result, err};
use report::Report;

/// `llama-bench compare`; `given` names the flags given on the command line (`--long`
/// names, and `saved` for the saved runs).
pub fn run(a: CompareArgs, given: &[String]) -> Result<()> {
    if !a.saved.is_empty() {
        return saved_runs(&a, given);
    }
    if let Some(e) = a.check_flags_without_check(given) {
        return Err(e);
    }
    let mut plan = Plan::new(&a)?;
    let limits = a.limits();
    let mut report = Report::default();
    let instances = plan.params.instances();
    for group in groups(&instances) {
        for l in &mut plan.local {
            l.check_alive()?;
        }
        let first = group[0];
        let mut pair = Pair::start(first, &plan.servers)?;
        report.header_once(&pair, &plan.machine, !plan.servers[0].is_empty());
        let model = pair.model.desc.clone();

        // Correctness first: teacher-forced logits, greedy continuations, graph size.
        let c = pair.correctness(a.steps as usize, first.n_threads)?;
        report.correctness(&model, &c);
        if a.check {
            report.fail(limits.correctness_failures(&model, &c));
            let decode = pair.graph(1, first.n_threads)?;
            report.decode_graph(&model, &decode);
            report.fail(limits.graph_failures(&model, &decode));
        }

        let weights = roofline::weight_bytes(&first.model).ok();
        for inst in group {
            let mut row = measure(&mut pair, inst, &plan)?;
            row.logits_max_abs_diff = Some(c.max_abs_diff);
            row.logits_nmse = Some(c.max_nmse);
            if let (Some(w), true) = (&weights, inst.n_gen > 0 && inst.n_prompt == 0) {
                report.bandwidth(&row, w, plan.membw);
            }
            if a.check {
                report.fail(limits.row_failures(&row, plan.reps()));
            }
            report.row(row);
        }
    }
    if a.check {
        report.fail(limits.missing_tests(report.rows()));
    }
    report.finish(plan.params.output, a.check)
}

/// `compare A B`: two saved runs, matched as upstream's `compare-llama-bench.py` matches them.
fn saved_runs(a: &CompareArgs, given: &[String]) -> Result<()> {
    let others: Vec<&String> = given.iter().filter(|id| *id != "saved").collect();
    match (&a.saved[..], others.is_empty()) {
        ([x, y], true) => {
            let c = llamacpp_bench_core::saved_compare::compare_files(x, y).map_err(err)?;
            println!("{}", c.to_markdown());
            Ok(())
        }
        ([_, _], false) => Err(format!(
            "compare of two saved runs takes no other flags (given: {})",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        (saved, _) => Err(format!(
            "compare takes two saved runs, got {}: {}",
            saved.len(),
            saved[0].display()
        )),
    }
}

/// What a live comparison runs, decided before any worker starts.
struct Plan {
    params: BenchParams,
    /// Each build's RPC servers, `[upstream, patched]`.
    servers: [Vec<String>; 2],
    /// Loopback servers `--rpc-local` started (killed when dropped).
    local: Vec<LocalServers>,
    /// Measured read bandwidth, bytes per second.
    membw: f64,
    /// The header's description of the machine.
    machine: String,
}

impl Plan {
    fn new(a: &CompareArgs) -> Result<Plan> {
        let mut params = a.bench.resolve();
        to_llama::check_supported(&params)?;
        resolve_models(&mut params)?;
        let (servers, local) = rpc_servers(a, &params)?;
        let threads = params.n_threads.first().copied().unwrap_or(2).max(1);
        let membw = roofline::measure_read_bandwidth(threads as usize);
        let machine = format!(
            "CPU: {} ({} cores) | backends: {} | threads: {:?} | read bandwidth: {:.1} GB/s",
            system_info().cpu_info,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            header_backends(!servers[0].is_empty()),
            params.n_threads,
            membw / 1e9
        );
        Ok(Plan {
            params,
            servers,
            local,
            membw,
            machine,
        })
    }

    fn reps(&self) -> usize {
        self.params.repetitions.max(1) as usize
    }
}

/// Runs of tests that share model parameters: one pair of workers serves each run.
fn groups(instances: &[TestInstance]) -> Vec<Vec<&TestInstance>> {
    let mut out: Vec<Vec<&TestInstance>> = Vec::new();
    for inst in instances {
        match out.last_mut() {
            Some(g) if g[0].same_model_params(inst) => g.push(inst),
            _ => out.push(vec![inst]),
        }
    }
    out
}

/// Times one test on both builds, with a progress bar on stderr (one step per repetition
/// of either build).
fn measure(pair: &mut Pair, inst: &TestInstance, plan: &Plan) -> Result<CompareRow> {
    let reps = plan.reps();
    let bar = indicatif::ProgressBar::new(2 * reps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(inst.test_name());
    let progress = |msg: &str| {
        bar.set_message(msg.to_string());
        bar.inc(1);
    };
    let [up, pa] = pair.measure(inst, reps, plan.params.no_warmup, &progress)?;
    bar.finish_and_clear();
    let minfo = ModelInfo {
        model_type: pair.model.desc.clone(),
        model_size: pair.model.size,
        model_n_params: pair.model.n_params,
    };
    let sys = system_info();
    let result = |commit: &str, ns: Vec<u64>| {
        let build = BuildInfo {
            commit: commit.into(),
            number: 0,
        };
        let mut r = TestResult::new(inst, &build, &sys, &minfo);
        r.set_samples(ns);
        r
    };
    let mut row = CompareRow::new(&result(&pair.commits[0], up), &result(&pair.commits[1], pa));
    row.model_type = pair.model.desc.clone();
    row.upstream_rpc = plan.servers[0].clone();
    row.patched_rpc = plan.servers[1].clone();
    Ok(row)
}

/// The RPC servers of each build (`[upstream, patched]`), starting the local ones `--rpc-local`
/// asks for (returned: they are killed when dropped).
fn rpc_servers(a: &CompareArgs, p: &BenchParams) -> Result<([Vec<String>; 2], Vec<LocalServers>)> {
    match a.rpc.plan(&p.rpc, &p.n_threads)? {
        RpcPlan::None => Ok((Default::default(), Vec::new())),
        RpcPlan::Given(servers) => Ok((servers, Vec::new())),
        RpcPlan::Local { servers, threads } => {
            let mut local = Vec::new();
            for (build, dir) in build_dirs()? {
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
                    .map_or_else(Vec::new, |l: &LocalServers| l.endpoints().to_vec())
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
