//! Every format against upstream's layout, and back through its reader.

use super::*;
use crate::fixtures::{readme_pp512, readme_run};
use crate::params::BenchParams;

fn build() -> BuildInfo {
    BuildInfo {
        commit: "8cf427ff".into(),
        number: 5163,
    }
}

fn printer(format: OutputFormat, args: &[&str]) -> Box<dyn Printer> {
    let params = BenchParams::parse_args(args.iter().copied()).unwrap();
    create_printer(format, &params, "CUDA", &build()).unwrap()
}

/// Prints, reads back, prints again: the text must not change, and the results
/// read back must equal the originals in every field the format carries.
fn round_trip(format: OutputFormat, args: &[&str]) -> (Vec<TestResult>, Vec<TestResult>) {
    let results = readme_run();
    let text = render(printer(format, args).as_mut(), &results);
    let back = parse(format, &text).unwrap_or_else(|e| panic!("{format}: {e}\n{text}"));
    assert_eq!(back.len(), results.len(), "{text}");
    let again = render(printer(format, args).as_mut(), &back);
    assert_eq!(text, again, "{format} changed on a round trip");
    (results, back)
}

/// The results without what a format without samples cannot carry, with rates
/// at the precision printed.
fn without_samples(rs: &[TestResult]) -> Vec<TestResult> {
    rs.iter()
        .map(|r| TestResult {
            samples_ns: Vec::new(),
            samples_ts: Vec::new(),
            avg_ts: fixed6(r.avg_ts).parse().unwrap(),
            stddev_ts: fixed6(r.stddev_ts).parse().unwrap(),
            ..r.clone()
        })
        .collect()
}

use crate::record::{fixed6, general6};

#[test]
fn csv_round_trip() {
    let (orig, back) = round_trip(OutputFormat::Csv, &[]);
    assert_eq!(back, without_samples(&orig));
}

#[test]
fn sql_round_trip() {
    let (orig, back) = round_trip(OutputFormat::Sql, &[]);
    assert_eq!(back, without_samples(&orig));
}

#[test]
fn json_and_jsonl_round_trip() {
    for format in [OutputFormat::Json, OutputFormat::Jsonl] {
        let (orig, back) = round_trip(format, &[]);
        let mut want = without_samples(&orig);
        for (w, o) in want.iter_mut().zip(&orig) {
            w.samples_ns = o.samples_ns.clone();
            w.samples_ts = o
                .samples_ts
                .iter()
                .map(|&t| general6(t).parse().unwrap())
                .collect();
        }
        assert_eq!(back, want, "{format}");
    }
}

#[test]
fn markdown_round_trip_recovers_the_shown_columns() {
    let (orig, back) = round_trip(OutputFormat::Md, &["-ub", "256,512"]);
    for (o, b) in orig.iter().zip(&back) {
        assert_eq!(b.model_type, o.model_type);
        assert_eq!(b.backends, o.backends);
        assert_eq!(
            (b.n_prompt, b.n_gen, b.n_depth),
            (o.n_prompt, o.n_gen, o.n_depth)
        );
        assert_eq!(b.n_gpu_layers, o.n_gpu_layers);
        assert_eq!(b.n_ubatch, o.n_ubatch);
        assert_eq!(b.n_batch, 2048, "hidden columns take upstream's defaults");
        assert_eq!(fixed(b.avg_ts, 2), fixed(o.avg_ts, 2));
        assert_eq!(
            (b.build_commit.as_str(), b.build_number),
            ("8cf427ff", 5163)
        );
        assert!(b.model_filename.is_empty() && b.samples_ns.is_empty());
    }
}

use crate::record::fixed;

#[test]
fn markdown_layout_snapshot() {
    let mut p = printer(OutputFormat::Md, &[]);
    let text = render(p.as_mut(), &readme_run()[..3]);
    let want = "\
| model                          |       size |     params | backend    | ngl |            test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | --------------: | -------------------: |
| qwen2 7B Q4_K - Medium         |   4.36 GiB |     7.62 B | CUDA       |  -1 |           pp512 |     7100.00 ± 140.34 |
| qwen2 7B Q4_K - Medium         |   4.36 GiB |     7.62 B | CUDA       |  -1 |           tg128 |        118.88 ± 1.04 |
| qwen2 7B Q4_K - Medium         |   4.36 GiB |     7.62 B | CUDA       |  -1 |    pp512 @ d512 |     6454.55 ± 127.58 |

build: 8cf427ff (5163)
";
    assert_eq!(text, want);
}

#[test]
fn markdown_shows_varying_and_non_default_parameters() {
    let params = BenchParams::parse_args([
        "-t", "4", "-b", "2048", "-fa", "0,1", "-ctk", "q8_0", "-mmp", "0", "-nopo", "1",
    ])
    .unwrap();
    let cpu = md::markdown_fields(&params, "CPU");
    assert_eq!(
        cpu,
        [
            "model",
            "size",
            "params",
            "backend",
            "n_threads",
            "type_k",
            "flash_attn",
            "load_mode",
            "no_op_offload",
            "test",
            "t/s"
        ]
    );
    let gpu = md::markdown_fields(&BenchParams::default(), "CUDA");
    assert_eq!(
        gpu,
        [
            "model",
            "size",
            "params",
            "backend",
            "n_gpu_layers",
            "test",
            "t/s"
        ]
    );
}

#[test]
fn csv_layout_snapshot() {
    let text = render(printer(OutputFormat::Csv, &[]).as_mut(), &[readme_pp512()]);
    let (header, row) = text.split_once('\n').unwrap();
    assert_eq!(
        header,
        "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,\
         model_size,model_n_params,n_batch,n_ubatch,n_threads,cpu_mask,cpu_strict,poll,type_k,\
         type_v,n_gpu_layers,n_cpu_moe,split_mode,main_gpu,no_kv_offload,flash_attn,devices,\
         tensor_split,tensor_buft_overrides,load_mode,lazy_mode,embeddings,no_op_offload,\
         no_host,repack,fit_target,fit_min_ctx,n_prompt,n_gen,n_depth,test_time,avg_ns,\
         stddev_ns,avg_ts,stddev_ts"
    );
    assert!(row.starts_with("\"8cf427ff\",\"5163\",\"AMD Ryzen 7 7800X3D 8-Core Processor\","));
    assert!(row.ends_with(
        ",\"2025-04-24T11:58:50Z\",\"72135640\",\"1453752\",\"7100.002165\",\"140.341520\"\n"
    ));
}

#[test]
fn json_layout_snapshot() {
    let text = render(printer(OutputFormat::Json, &[]).as_mut(), &[readme_pp512()]);
    assert!(
        text.starts_with(
            "[\n  {\n    \"build_commit\": \"8cf427ff\",\n    \"build_number\": 5163,\n"
        )
    );
    for line in [
        "    \"cpu_strict\": false,\n",
        "    \"flash_attn\": -1,\n",
        "    \"load_mode\": \"auto\",\n",
        "    \"lazy_mode\": \"auto\",\n",
        "    \"no_op_offload\": 0,\n",
        "    \"avg_ts\": 7100.002165,\n",
        "    \"samples_ns\": [ 74601900, 71632900, 71745200, 71952700, 70745500 ],\n",
        "    \"samples_ts\": [ 6863.1, 7147.55, 7136.37, 7115.79, 7237.21 ]\n  }\n]\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let jsonl = render(
        printer(OutputFormat::Jsonl, &[]).as_mut(),
        &[readme_pp512()],
    );
    assert!(jsonl.starts_with("{\"build_commit\": \"8cf427ff\", \"build_number\": 5163, "));
    assert!(jsonl.ends_with(
        "\"samples_ns\": [ 74601900, 71632900, 71745200, 71952700, 70745500 ],\
         \"samples_ts\": [ 6863.1, 7147.55, 7136.37, 7115.79, 7237.21 ]}\n"
    ));
}

#[test]
fn sql_layout_snapshot() {
    let mut r = readme_pp512();
    r.model_filename = "it's.gguf".into();
    let text = render(printer(OutputFormat::Sql, &[]).as_mut(), &[r]);
    assert!(text.starts_with(
        "CREATE TABLE IF NOT EXISTS llamacpp_bench (\n  build_commit TEXT,\n  build_number INTEGER,\n"
    ));
    assert!(text.contains("  avg_ts REAL,\n  stddev_ts REAL\n);\n\nINSERT INTO llamacpp_bench (build_commit, build_number, "));
    assert!(text.contains("VALUES ('8cf427ff', '5163', "));
    assert!(text.contains("'it''s.gguf'"));
    assert!(text.ends_with("'7100.002165', '140.341520');\n"));
    assert_eq!(
        parse(OutputFormat::Sql, &text).unwrap()[0].model_filename,
        "it's.gguf"
    );
}

#[test]
fn upstream_readme_samples_parse() {
    // Lines as upstream's README shows them (an older revision: fewer fields).
    let jsonl = r#"{"build_commit": "8cf427ff", "build_number": 5163, "model_filename": "models/Qwen2.5-7B-Instruct-Q4_K_M.gguf", "model_type": "qwen2 7B Q4_K - Medium", "n_batch": 2048, "use_mmap": true, "no_op_offload": 0, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ns": 70497220, "avg_ts": 7263.609157, "stddev_ts": 90.940578, "samples_ns": [ 71551000, 71222800, 70364100, 69439100, 69909100 ],"samples_ts": [ 7155.74, 7188.71, 7276.44, 7373.37, 7323.8 ]}"#;
    let r = &parse(OutputFormat::Jsonl, jsonl).unwrap()[0];
    assert_eq!((r.n_prompt, r.avg_ts), (512, 7263.609157));
    assert_eq!(r.samples_ts.len(), 5);
    let csv = "build_commit,n_prompt,n_gen,avg_ts\n\"8cf427ff\",\"0\",\"128\",\"119.915244\"\n";
    assert_eq!(parse(OutputFormat::Csv, csv).unwrap()[0].n_gen, 128);
}

#[test]
fn read_results_picks_the_format_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let text = render(printer(OutputFormat::Jsonl, &[]).as_mut(), &readme_run());
    std::fs::write(&path, text).unwrap();
    assert_eq!(read_results(&path).unwrap().len(), 4);
    let unknown = dir.path().join("run.txt");
    std::fs::write(&unknown, "").unwrap();
    assert!(matches!(
        read_results(&unknown),
        Err(ParseError::UnknownFormat { .. })
    ));
    assert!(matches!(
        read_results(&dir.path().join("missing.csv")),
        Err(ParseError::Io { .. })
    ));
}
