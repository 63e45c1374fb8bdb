//! Argument parsing and test expansion, checked against upstream's semantics.

use super::*;

fn parse(args: &[&str]) -> BenchParams {
    match BenchParams::parse_args(args.iter().copied()) {
        Ok(p) => p,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn parse_err(args: &[&str]) -> String {
    match BenchParams::parse_args(args.iter().copied()) {
        Ok(p) => panic!("{args:?} should fail, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

/// `(n_prompt, n_gen, n_depth)` of each test.
fn shapes(p: &BenchParams) -> Vec<(i32, i32, i32)> {
    p.instances()
        .iter()
        .map(|i| (i.n_prompt, i.n_gen, i.n_depth))
        .collect()
}

#[test]
fn defaults_are_upstreams() {
    let p = parse(&[]);
    assert_eq!(p.model, vec![DEFAULT_MODEL]);
    assert_eq!(p.n_prompt, vec![512]);
    assert_eq!(p.n_gen, vec![128]);
    assert!(p.n_pg.is_empty());
    assert_eq!(p.n_depth, vec![0]);
    assert_eq!(p.n_batch, vec![2048]);
    assert_eq!(p.n_ubatch, vec![512]);
    assert_eq!(p.type_k, vec![CacheType::F16]);
    assert_eq!(p.n_gpu_layers, vec![-1]);
    assert_eq!(p.poll, vec![50]);
    assert_eq!(p.cpu_mask, vec!["0x0"]);
    assert_eq!(p.flash_attn, vec![FlashAttn::Auto]);
    assert_eq!(p.repack, vec![true]);
    assert_eq!(p.repetitions, 5);
    assert_eq!(p.output, OutputFormat::Md);
    assert_eq!(p.output_err, OutputFormat::None);
    assert_eq!(p, BenchParams::default());
    assert_eq!(shapes(&p), vec![(512, 0, 0), (0, 128, 0)]);
}

#[test]
fn short_and_long_spellings_agree() {
    let short = parse(&[
        "-m",
        "a.gguf",
        "-p",
        "64",
        "-n",
        "16",
        "-pg",
        "32,8",
        "-d",
        "128",
        "-b",
        "256",
        "-ub",
        "128",
        "-ctk",
        "q8_0",
        "-ctv",
        "q4_0",
        "-t",
        "4",
        "-C",
        "0xff",
        "-ngl",
        "99",
        "-ncmoe",
        "2",
        "-sm",
        "row",
        "-mg",
        "1",
        "-nkvo",
        "1",
        "-fa",
        "on",
        "-dev",
        "CUDA0",
        "-lm",
        "mmap",
        "-lzm",
        "off",
        "-embd",
        "1",
        "-ts",
        "3/1",
        "-ot",
        "exps=CPU",
        "-nopo",
        "1",
        "--no-host",
        "1",
        "--repack",
        "0",
        "-fitt",
        "1024",
        "-fitc",
        "8192",
        "-r",
        "3",
        "-o",
        "json",
        "-oe",
        "md",
        "-v",
        "--progress",
        "--no-warmup",
        "--delay",
        "2",
        "--prio",
        "-1",
        "--poll",
        "0",
        "--cpu-strict",
        "1",
        "--numa",
        "isolate",
    ]);
    let long = parse(&[
        "--model",
        "a.gguf",
        "--n-prompt",
        "64",
        "--n-gen",
        "16",
        "--pg",
        "32,8",
        "--n-depth",
        "128",
        "--batch-size",
        "256",
        "--ubatch-size",
        "128",
        "--cache-type-k",
        "q8_0",
        "--cache-type-v",
        "q4_0",
        "--threads",
        "4",
        "--cpu-mask",
        "0xff",
        "--n-gpu-layers",
        "99",
        "--n-cpu-moe",
        "2",
        "--split-mode",
        "row",
        "--main-gpu",
        "1",
        "--no-kv-offload",
        "1",
        "--flash-attn",
        "on",
        "--device",
        "CUDA0",
        "--load-mode",
        "mmap",
        "--lazy-mode",
        "off",
        "--embeddings",
        "1",
        "--tensor-split",
        "3/1",
        "--override-tensor",
        "exps=CPU",
        "--no-op-offload",
        "1",
        "--no-host",
        "1",
        "--repack",
        "0",
        "--fit-target",
        "1024",
        "--fit-ctx",
        "8192",
        "--repetitions",
        "3",
        "--output",
        "json",
        "--output-err",
        "md",
        "--verbose",
        "--progress",
        "--no-warmup",
        "--delay",
        "2",
        "--prio",
        "-1",
        "--poll",
        "0",
        "--cpu-strict",
        "1",
        "--numa",
        "isolate",
    ]);
    assert_eq!(short, long);
    assert_eq!(short.model, vec!["a.gguf"]);
    assert_eq!(short.n_pg, vec![(32, 8)]);
    assert_eq!(short.type_k, vec![CacheType::Q8_0]);
    assert_eq!(short.type_v, vec![CacheType::Q4_0]);
    assert_eq!(short.n_gpu_layers, vec![99]);
    assert_eq!(short.split_mode, vec![SplitMode::Row]);
    assert_eq!(short.flash_attn, vec![FlashAttn::Enabled]);
    assert_eq!(short.devices, vec![Devices::List(vec!["CUDA0".into()])]);
    assert_eq!(short.load_mode, vec![LoadMode::Mmap]);
    assert_eq!(short.lazy_mode, vec![LazyMode::Off]);
    assert_eq!(short.tensor_split[0].to_string(), "3.00/1.00");
    assert_eq!(short.tensor_buft_overrides[0].to_string(), "exps=CPU");
    assert_eq!(short.repack, vec![false]);
    assert_eq!(short.fit_target, vec![1024]);
    assert_eq!(short.fit_min_ctx, vec![8192]);
    assert_eq!(short.repetitions, 3);
    assert_eq!(short.output, OutputFormat::Json);
    assert_eq!(short.output_err, OutputFormat::Md);
    assert!(short.verbose && short.progress && short.no_warmup);
    assert_eq!((short.delay, short.prio), (2, -1));
    assert_eq!(short.numa, Some(Numa::Isolate));
}

#[test]
fn underscored_long_flags_work_like_upstream() {
    assert_eq!(parse(&["--n_prompt", "8"]).n_prompt, vec![8]);
    assert_eq!(parse(&["--n_gpu_layers", "3"]).n_gpu_layers, vec![3]);
}

#[test]
fn lists_ranges_and_repeats_concatenate() {
    let p = parse(&["-p", "1-4", "-p", "16-64*2", "-p", "100-120+10,7"]);
    assert_eq!(p.n_prompt, vec![1, 2, 3, 4, 16, 32, 64, 100, 110, 120, 7]);
    let p = parse(&["-t", "1,2", "-t", "8"]);
    assert_eq!(p.n_threads, vec![1, 2, 8]);
    let p = parse(&["-ngl", "-1,0-20+10", "-ngl", "99"]);
    assert_eq!(p.n_gpu_layers, vec![-1, 0, 10, 20, 99]);
    let p = parse(&["-ctk", "f16,q8_0", "-ctk", "q4_0"]);
    assert_eq!(
        p.type_k,
        vec![CacheType::F16, CacheType::Q8_0, CacheType::Q4_0]
    );
    let p = parse(&["-fa", "0,1", "-fa", "auto"]);
    assert_eq!(
        p.flash_attn,
        vec![FlashAttn::Disabled, FlashAttn::Enabled, FlashAttn::Auto]
    );
    let p = parse(&["-pg", "512,128", "-pg", "0,0"]);
    assert_eq!(p.n_pg, vec![(512, 128), (0, 0)]);
}

#[test]
fn model_flag_repeats_and_splits() {
    let p = parse(&["-m", "a.gguf", "-m", "b.gguf,c.gguf"]);
    assert_eq!(p.model, vec!["a.gguf", "b.gguf", "c.gguf"]);
}

#[test]
fn deprecated_mmap_and_dio_become_load_modes() {
    let p = parse(&["-lm", "mlock", "-mmp", "0,1", "-dio", "1"]);
    assert_eq!(
        p.load_mode,
        vec![
            LoadMode::Mlock,
            LoadMode::None,
            LoadMode::Mmap,
            LoadMode::Dio
        ]
    );
}

#[test]
fn override_groups_and_devices_split_on_commas() {
    let p = parse(&["-ot", "a=CPU;b=CUDA0,,c=CPU"]);
    let texts: Vec<String> = p
        .tensor_buft_overrides
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(texts, ["a=CPU;b=CUDA0", "none", "c=CPU"]);
    let p = parse(&["-dev", "none,CUDA0/CUDA1"]);
    assert_eq!(p.devices.len(), 2);
    assert_eq!(p.devices[1].to_string(), "CUDA0/CUDA1");
}

#[test]
fn single_options_take_the_last_value() {
    let p = parse(&["-r", "2", "-r", "7", "-o", "csv", "-o", "sql", "-v", "-v"]);
    assert_eq!(p.repetitions, 7);
    assert_eq!(p.output, OutputFormat::Sql);
}

#[test]
fn cartesian_product_count_and_order() {
    // 2 batch sizes x 2 depths x (2 pp + 1 tg + 1 pg) = 16 tests.
    let p = parse(&[
        "-p", "16,32", "-n", "8", "-pg", "4,4", "-d", "0,16", "-b", "64,128",
    ]);
    let tests = p.instances();
    assert_eq!(tests.len(), 16);
    let got: Vec<(i32, i32, i32, i32)> = tests
        .iter()
        .map(|t| (t.n_batch, t.n_depth, t.n_prompt, t.n_gen))
        .collect();
    let mut want = Vec::new();
    for b in [64, 128] {
        for d in [0, 16] {
            want.extend([(b, d, 16, 0), (b, d, 32, 0), (b, d, 0, 8), (b, d, 4, 4)]);
        }
    }
    assert_eq!(got, want);
    assert_eq!(tests[3].test_name(), "pp4+tg4");
    assert_eq!(tests[7].test_name(), "pp4+tg4 @ d16");
}

#[test]
fn model_params_are_the_outer_loops() {
    let p = parse(&[
        "-m", "a,b", "-ngl", "0,99", "-t", "1,2", "-p", "8", "-n", "0",
    ]);
    let got: Vec<(String, i32, i32)> = p
        .instances()
        .into_iter()
        .map(|t| (t.model, t.n_gpu_layers, t.n_threads))
        .collect();
    let want: Vec<(String, i32, i32)> = [
        ("a", 0, 1),
        ("a", 0, 2),
        ("a", 99, 1),
        ("a", 99, 2),
        ("b", 0, 1),
        ("b", 0, 2),
        ("b", 99, 1),
        ("b", 99, 2),
    ]
    .into_iter()
    .map(|(m, n, t)| (m.to_owned(), n, t))
    .collect();
    assert_eq!(got, want);
    let tests = p.instances();
    assert!(tests[0].same_model_params(&tests[1]));
    assert!(!tests[1].same_model_params(&tests[2]));
}

#[test]
fn zero_lengths_are_skipped_and_depth_applies_to_all() {
    let p = parse(&["-p", "0,64", "-n", "0", "-d", "0,512"]);
    assert_eq!(shapes(&p), vec![(64, 0, 0), (64, 0, 512)]);
    let p = parse(&["-p", "0", "-n", "0"]);
    assert!(p.instances().is_empty());
    let p = parse(&["-p", "0", "-n", "0", "-pg", "0,0", "-pg", "0,16"]);
    assert_eq!(shapes(&p), vec![(0, 16, 0)]);
}

#[test]
fn instance_carries_every_value() {
    let p = parse(&[
        "-m", "x.gguf", "-p", "8", "-n", "0", "-ctk", "q8_0", "-fa", "1", "-nkvo", "1", "-embd",
        "1", "-mmp", "0", "-ub", "64",
    ]);
    let t = &p.instances()[0];
    assert_eq!(t.model, "x.gguf");
    assert_eq!(t.type_k, CacheType::Q8_0);
    assert_eq!(t.type_v, CacheType::F16);
    assert_eq!(t.flash_attn, FlashAttn::Enabled);
    assert!(t.no_kv_offload && t.embeddings);
    assert_eq!(t.load_mode, LoadMode::None);
    assert_eq!(t.n_ubatch, 64);
    assert_eq!(t.n_ctx(), 8);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for (args, needle) in [
        (&["-p", "abc"][..], "invalid range format"),
        (&["-p", "1-4+0"][..], "does not grow"),
        (&["-p", "-1"][..], ""),
        (&["-ngl", "x"][..], "invalid range format"),
        (&["-pg", "512"][..], "expected <pp,tg>"),
        (&["-pg", "1,2,3"][..], "expected <pp,tg>"),
        (&["-ctk", "q9_9"][..], "invalid cache type"),
        (&["-sm", "diagonal"][..], "invalid split mode"),
        (&["-fa", "maybe"][..], "flash attention"),
        (&["-nkvo", "yes"][..], "invalid boolean"),
        (&["-o", "xml"][..], "xml"),
        (&["-r", "0"][..], "0"),
        (&["--prio", "7"][..], "priority"),
        (&["-ot", "noequals"][..], "tensor override"),
        (&["-ts", "a/b"][..], "tensor split"),
        (&["-m"][..], "value is required"),
        (&["--frobnicate"][..], "frobnicate"),
        (&["-nglx", "3"][..], "--nglx"),
        (&["-m", "a,,b"][..], "empty item"),
    ] {
        let err = parse_err(args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn help_is_reported_as_an_error_kind() {
    let err = BenchParams::parse_args(["--help"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    let text = err.to_string();
    assert!(text.contains("--n-gpu-layers"), "{text}");
    assert!(text.contains("(-ngl)"), "{text}");
}

#[test]
fn args_group_flattens_into_a_subcommand() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Compare {
            #[command(flatten)]
            bench: BenchArgs,
            #[arg(long)]
            json: bool,
        },
    }
    let argv = normalize_args(
        &Cli::command(),
        [
            "llama-bench",
            "compare",
            "-ngl",
            "99",
            "-fa",
            "1",
            "--json",
            "-ub",
            "256",
        ],
    );
    let matches = Cli::command().try_get_matches_from(argv).unwrap();
    let Cmd::Compare { bench, json } = Cli::from_arg_matches(&matches).unwrap().cmd;
    let p = bench.resolve();
    assert!(json);
    assert_eq!(p.n_gpu_layers, vec![99]);
    assert_eq!(p.flash_attn, vec![FlashAttn::Enabled]);
    assert_eq!(p.n_ubatch, vec![256]);
}
