//! The binary end to end on a tiny synthetic Qwen3-Next: `compare --check`,
//! `graph` (deterministic counts), the plain run and saved-file compare.

mod common;

use common::tiny;

/// `llama-bench args`: whether it succeeded, stdout and stderr.
fn bench(args: &[&str]) -> (bool, String, String) {
    let (status, out, err) = common::bench(args);
    (status.success(), out, err)
}

#[test]
fn compare_check_passes_and_reports_logits_within_the_matmul_threshold() {
    let m = tiny();
    // The tiny model's matrices are Q8_0: on an x86 host with VNNI, patch 0016's kernels sum
    // them in another order than upstream's, so the builds agree within upstream's matmul
    // threshold (measured: 2.8e-5 over the 32 steps); elsewhere they agree exactly.
    // `--min-rel 1` turns off the slowdown check: beside the other tests of this binary, which
    // run at the same time on the same cores, ggml's spinning threads make a tiny model's
    // timings meaningless (seen: tg8 1607 vs 56 t/s, 1282 vs 1937 t/s when run alone). The
    // release `compare --check` runs in `.ci/run` guard speed.
    let (ok, out, err) = bench(&[
        "compare",
        "-m",
        &m,
        "-p",
        "32",
        "-n",
        "8",
        "-r",
        "2",
        "-t",
        "2",
        "--check",
        "--min-rel",
        "1",
        "--max-nmse",
        "5e-4",
        "-o",
        "json",
    ]);
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json rows");
    assert_eq!(rows.len(), 2);
    for r in &rows {
        for key in [
            "model_filename",
            "n_prompt",
            "n_gen",
            "n_depth",
            "upstream_ts",
            "patched_ts",
            "speedup",
            "logits_max_abs_diff",
            "logits_nmse",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        let nmse = r["logits_nmse"].as_f64().expect("logits_nmse");
        assert!((0.0..=5e-4).contains(&nmse), "logits NMSE {nmse}");
        assert!(
            r["upstream_ts"].as_f64().unwrap() > 0.0 && r["patched_ts"].as_f64().unwrap() > 0.0
        );
    }
}

#[test]
fn compare_check_enforces_required_gains() {
    // Guards a build cannot meet must fail, each with its reason, so that CI can require a gain
    // and not merely the absence of a slowdown.
    let m = tiny();
    let (ok, out, err) = bench(&[
        "compare",
        "-m",
        &m,
        "-p",
        "16",
        "-n",
        "0",
        "-r",
        "1",
        "--check",
        "--min-speedup",
        // out of reach even when a loaded machine stalls one build (once, with a compile running
        // beside the tests, a 1000x requirement was not reported as failed)
        "pp16=1e12",
        "--min-speedup",
        "tg999=1",
        "--max-nodes-ratio",
        "0.5",
    ]);
    assert!(!ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("pp16: speedup"), "{err}");
    assert!(err.contains("tg999: no such test"), "{err}");
    assert!(err.contains("> 0.5 x upstream's"), "{err}");
}

#[test]
fn graph_counts_are_stable_and_the_patched_decode_graph_is_smaller() {
    let m = tiny();
    let run = || {
        let (ok, out, err) = bench(&["graph", "-m", &m, "-o", "json", "-t", "2", "-ub", "64"]);
        assert!(ok, "{err}");
        serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("json")
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "graph statistics must be deterministic");
    let get = |build: &str, phase: &str, key: &str| {
        a.iter()
            .find(|r| r["build"] == build && r["phase"] == phase)
            .and_then(|r| r[key].as_u64())
            .expect("row")
    };
    let ops = |build: &str, op: &str| {
        a.iter()
            .find(|r| r["build"] == build && r["phase"] == "decode")
            .map_or(0, |r| r["ops"][op].as_u64().unwrap_or(0))
    };
    let fewer = |op: &str| ops("upstream", op) as i64 - ops("patched", op) as i64;
    // The tiny model: 3 linear-attention layers (6 recurrent states), 4 MoE layers, top-4.
    // 0001: one CONT per linear-attention layer is gone; 0012: the sigmoid reads beta's view
    // in each linear-attention layer and the gate's in the full-attention layer.
    assert_eq!(fewer("CONT"), 3 + 4);
    // 0004: each MoE layer sums its 4 experts with one SUM_ROWS instead of 3 ADDs.
    assert_eq!((fewer("ADD"), fewer("SUM_ROWS")), (12, -4));
    // 0005: no zero-sized extra-state CPY per recurrent state (one sequence decoding), and
    // no state-clearing SCALE in a steady-state step (`graph` counts a sequence's second).
    // 0007: GATED_DELTA_NET writes its state into the cache: one CPY fewer per linear layer.
    // 0010: GATED_DELTA_NET L2-normalises q and k itself: the RMS_NORM and SCALE of each of q
    // and k leave every linear layer.
    assert_eq!((fewer("CPY"), fewer("SCALE")), (6 + 3, 6 + 6));
    assert_eq!(fewer("RMS_NORM"), 6);
    // 0006: the interleaved q/k broadcast replaces the q and k REPEATs of each linear layer.
    assert_eq!(fewer("REPEAT"), 6);
    // 0017: each linear layer's gated norm is one SWIGLU instead of a SILU and a MUL.
    assert_eq!((fewer("SILU"), fewer("SWIGLU")), (3, -3));
    // 0041: GATED_DELTA_NET reads each input state from the cache rows: the GET_ROWS gathering
    // them leaves every linear layer.
    assert_eq!(fewer("GET_ROWS"), 3);
    assert_eq!(
        get("upstream", "decode", "n_nodes") - get("patched", "decode", "n_nodes"),
        3 + 8 + 6 + 6 + 6 + 3 + 12 + 4 + 3 + 3
    );
    assert!(get("patched", "decode", "copy_bytes") < get("upstream", "decode", "copy_bytes"));
    assert!(get("patched", "decode", "gather_bytes") < get("upstream", "decode", "gather_bytes"));
    assert!(get("patched", "prompt", "compute_buffer_bytes") > 0);
}

#[test]
fn plain_run_writes_each_format_and_saved_files_compare() {
    let m = tiny();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for fmt in ["jsonl", "csv"] {
        let (ok, out, err) = bench(&[
            "-m", &m, "-p", "16", "-n", "4", "-r", "2", "-t", "2", "-o", fmt,
        ]);
        assert!(ok, "{err}");
        let results = llamacpp_bench_core::output::parse(
            llamacpp_bench_core::params::OutputFormat::from_path(std::path::Path::new(&format!(
                "x.{fmt}"
            )))
            .unwrap(),
            &out,
        )
        .expect("parses back");
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r.avg_ts > 0.0 && r.n_threads == 2));
        if fmt == "jsonl" {
            assert!(results.iter().all(|r| r.samples_ns.len() == 2));
        }
        let f = dir.path().join(format!("run.{fmt}"));
        std::fs::write(&f, out).unwrap();
        files.push(f);
    }
    let (ok, out, err) = bench(&[
        "compare",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("pp16") && out.contains("tg4"), "{out}");
}

#[test]
fn profile_reports_each_matmul_kind_with_its_weight_bandwidth() {
    let m = tiny();
    let (ok, out, err) = bench(&["profile", "-m", &m, "-n", "2", "-t", "2", "-o", "json"]);
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    let p: serde_json::Value = serde_json::from_str(&out).expect("json profile");
    let num = |v: &serde_json::Value, key: &str| {
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no number {key} in {v}"))
    };
    assert_eq!(p["steps"], 2);
    for key in [
        "step_ms_plain",
        "step_ms_plain_no_pool",
        "step_ms_timed",
        "nodes_ms",
        "read_bandwidth_gbs",
    ] {
        let x = num(&p, key);
        assert!(x.is_finite() && x > 0.0, "{key} = {x}");
    }
    // The nodes run inside the timed step.
    assert!(num(&p, "nodes_ms") < num(&p, "step_ms_timed"));
    let rows = p["rows"].as_array().expect("rows");
    let matmul =
        |op: &str| -> Vec<&serde_json::Value> { rows.iter().filter(|r| r["op"] == op).collect() };
    let (mm, moe) = (matmul("MUL_MAT"), matmul("MUL_MAT_ID"));
    assert!(!mm.is_empty() && !moe.is_empty(), "{out}");
    for r in mm.iter().chain(&moe) {
        assert!(r["role"].is_string(), "{r}");
        assert!(num(r, "weight_bytes_per_step") > 0.0, "{r}");
        let gbs = num(r, "gbs");
        assert!(gbs.is_finite() && gbs > 0.0, "{r}");
        assert!(num(r, "membw_share").is_finite(), "{r}");
        let n = num(r, "nodes_per_step");
        assert!(n >= 1.0 && n.fract() == 0.0, "{r}");
    }
    // The lm_head reads its whole matrix; the experts only the used ones' share.
    assert!(mm.iter().any(|r| r["role"] == "output"), "{out}");
    assert!(moe.iter().any(|r| r["role"] == "ffn_down_exps"), "{out}");
    // Other ops read no weights.
    let add = rows.iter().find(|r| r["op"] == "ADD").expect("ADD row");
    assert_eq!(num(add, "weight_bytes_per_step"), 0.0);
    assert!(add["gbs"].is_null());
    let all = &p["matmuls"];
    let total: f64 = mm
        .iter()
        .chain(&moe)
        .map(|r| num(r, "weight_bytes_per_step"))
        .sum();
    assert!((num(all, "weight_bytes_per_step") - total).abs() <= 1e-6 * total);
    let shares: f64 = rows.iter().map(|r| num(r, "share")).sum();
    assert!(
        shares > 0.0 && shares <= 1.0 + 1e-9,
        "shares sum to {shares}"
    );
}

#[test]
fn profile_times_prompt_ubatches_and_takes_upstreams_ngl_flag() {
    let m = tiny();
    let args = [
        "profile", "-m", &m, "-n", "2", "-b", "6", "-ngl", "99", "-o", "json",
    ];
    let (ok, out, err) = bench(&args);
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    let p: serde_json::Value = serde_json::from_str(&out).expect("json profile");
    assert_eq!(p["batch"], 6);
    assert_eq!(p["n_gpu_layers"], 99);
    // offloaded: the CPU's read bandwidth is not what the weights are read at
    assert_eq!(p["read_bandwidth_gbs"], 0.0);
    let rows = p["rows"].as_array().expect("rows");
    let moe = rows
        .iter()
        .find(|r| r["op"] == "MUL_MAT_ID")
        .expect("MUL_MAT_ID row");
    assert!(moe["membw_share"].is_null(), "{moe}");
    // a 6-token ubatch routes each token: the expert matmuls read more than one token's experts
    let (ok1, out1, err1) = bench(&["profile", "-m", &m, "-n", "2", "-o", "json"]);
    assert!(ok1, "{err1}");
    let p1: serde_json::Value = serde_json::from_str(&out1).expect("json profile");
    let bytes = |p: &serde_json::Value| {
        p["matmuls"]["weight_bytes_per_step"]
            .as_f64()
            .expect("matmul bytes")
    };
    assert!(bytes(&p) > bytes(&p1), "{} vs {}", bytes(&p), bytes(&p1));
    let (bad, _, e) = bench(&["profile", "-m", &m, "-b", "0"]);
    assert!(!bad && e.contains("-b"), "{e}");
}

#[test]
fn flags_that_would_do_nothing_are_refused_and_help_is_not_an_error() {
    // A limit without --check, and run flags beside two saved runs, would look applied.
    let (ok, _, e) = bench(&["compare", "--min-speedup", "pp16=2", "-p", "16"]);
    assert!(!ok && e.contains("--min-speedup needs --check"), "{e}");
    let (ok, _, e) = bench(&["compare", "-ngl", "1", "a.jsonl", "b.jsonl"]);
    assert!(
        !ok && e.contains("takes no other flags (given: --n-gpu-layers)"),
        "{e}"
    );
    let (ok, _, e) = bench(&["compare", "--min-speedup", "pp16"]);
    assert!(!ok && e.contains("TEST=RATIO"), "{e}");
    // Every subcommand's --help prints and exits 0, as does upstream's -h.
    for sub in ["compare", "graph", "membw", "profile", "synth", "run"] {
        let (ok, out, e) = bench(&[sub, "--help"]);
        assert!(ok && out.contains("Usage: llama-bench"), "{sub}: {out}{e}");
    }
    let (ok, out, _) = bench(&["-h"]);
    assert!(ok && out.contains("--n-gpu-layers"), "{out}");
    let (ok, out, _) = bench(&["help"]);
    assert!(
        ok && out.contains("compare") && out.contains("profile"),
        "{out}"
    );
}
