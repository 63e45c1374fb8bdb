//! Comparing two small saved runs.

use super::*;
use crate::fixtures::readme_run;
use crate::output::{self, Printer, csv::CsvPrinter, jsonl::JsonlPrinter};

/// Side A: the README run. Side B: the same tests at fixed rates, plus one
/// test A does not have; A gets a test B does not have.
fn runs() -> (Vec<TestResult>, Vec<TestResult>) {
    let a = readme_run();
    let mut b: Vec<TestResult> = a.clone();
    for (r, ts) in b.iter_mut().zip([8000.0, 150.0, 7000.0, 120.0]) {
        r.build_commit = "patched1".into();
        r.avg_ts = ts;
    }
    let mut extra_b = b[0].clone();
    extra_b.n_prompt = 1024;
    b.push(extra_b);
    let mut extra_a = a[1].clone();
    extra_a.n_gen = 256;
    let mut a = a;
    a.push(extra_a);
    (a, b)
}

fn write(
    dir: &Path,
    name: &str,
    printer: &mut dyn Printer,
    results: &[TestResult],
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, output::render(printer, results)).unwrap();
    path
}

#[test]
fn speedups_of_two_files() {
    let (a, b) = runs();
    let dir = tempfile::tempdir().unwrap();
    let pa = write(dir.path(), "base.jsonl", &mut JsonlPrinter, &a);
    let pb = write(dir.path(), "new.csv", &mut CsvPrinter, &b);
    let cmp = compare_files(&pa, &pb).unwrap();
    assert_eq!(
        (cmp.label_a.as_str(), cmp.label_b.as_str()),
        ("8cf427ff", "patched1")
    );
    assert!(cmp.columns.is_empty());
    let got: Vec<(&str, String, String)> = cmp
        .rows
        .iter()
        .map(|r| (r.test.as_str(), fixed(r.ts_b, 2), fixed(r.speedup, 3)))
        .collect();
    // pp before tg, shallow before deep: the script's ORDER BY n_gen, n_prompt, n_depth.
    let want = [
        ("pp512", "8000.00", fixed(8000.0 / a[0].avg_ts, 3)),
        ("pp512@d512", "7000.00", fixed(7000.0 / a[2].avg_ts, 3)),
        ("tg128", "150.00", fixed(150.0 / a[1].avg_ts, 3)),
        ("tg128@d512", "120.00", fixed(120.0 / a[3].avg_ts, 3)),
    ];
    let want: Vec<(&str, String, String)> = want
        .into_iter()
        .map(|(t, b, s)| (t, b.to_owned(), s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(fixed(cmp.rows[0].speedup, 2), "1.13");
    assert_eq!(cmp.only_in_a, ["tg256"]);
    assert_eq!(cmp.only_in_b, ["pp1024"]);

    let md = cmp.to_markdown();
    let mut lines = md.lines();
    assert_eq!(
        lines.next().unwrap(),
        "| Model           | Test       |   t/s 8cf427ff |   t/s patched1 |   Speedup |"
    );
    assert_eq!(
        lines.next().unwrap(),
        "|:----------------|:-----------|---------------:|---------------:|----------:|"
    );
    assert_eq!(
        lines.next().unwrap(),
        "| qwen2 7B Q4_K_M | pp512      |        7100.00 |        8000.00 |      1.13 |"
    );

    let json: serde_json::Value = serde_json::from_str(&cmp.to_json()).unwrap();
    assert_eq!(json["rows"][0]["test"], "pp512");
    assert_eq!(json["rows"][2]["ts_b"], 150.0);
    let back: SavedComparison = serde_json::from_str(&cmp.to_json()).unwrap();
    assert_eq!(back, cmp);
}

#[test]
fn repeated_tests_are_averaged_and_differing_keys_shown() {
    let (a, _) = runs();
    let mut a = a[..2].to_vec();
    let mut again = a[0].clone();
    again.avg_ts = a[0].avg_ts + 100.0;
    a.push(again);
    let mut b = a[..2].to_vec();
    for r in &mut b {
        r.avg_ts *= 2.0;
    }
    let mut fa_a = a[0].clone();
    fa_a.flash_attn = 1;
    fa_a.avg_ts = 10.0;
    let mut fa_b = fa_a.clone();
    fa_b.avg_ts = 30.0;
    a.push(fa_a);
    b.push(fa_b);
    let cmp = compare_results(&a, &b, "A", "B").unwrap();
    assert_eq!(cmp.columns, ["flash_attn"]);
    let rows: Vec<(&str, &str, String)> = cmp
        .rows
        .iter()
        .map(|r| {
            (
                r.properties[0].as_str(),
                r.test.as_str(),
                fixed(r.speedup, 4),
            )
        })
        .collect();
    let pp_mean = a[0].avg_ts + 50.0;
    assert_eq!(
        rows,
        [
            ("No", "pp512", fixed(2.0 * a[0].avg_ts / pp_mean, 4)),
            ("No", "tg128", "2.0000".to_owned()),
            ("Yes", "pp512", "3.0000".to_owned()),
        ]
    );
    let md = cmp.to_markdown();
    assert!(
        md.starts_with("| Model           | FlashAttention   | Test   |"),
        "{md}"
    );
    assert!(
        md.contains("\n| qwen2 7B Q4_K_M | Yes              | pp512  |"),
        "{md}"
    );
}

#[test]
fn build_and_time_fields_do_not_prevent_a_match_but_parameters_do() {
    let (a, _) = runs();
    let mut b = a.clone();
    for r in &mut b {
        r.build_commit = "other".into();
        r.build_number = 1;
        r.test_time = "2030-01-01T00:00:00Z".into();
        r.avg_ns = 1;
    }
    assert_eq!(compare_results(&a, &b, "A", "B").unwrap().rows.len(), 5);
    for r in &mut b {
        r.n_batch = 1;
    }
    let err = compare_results(&a, &b, "A", "B").unwrap_err();
    assert!(matches!(err, CompareError::NothingInCommon { .. }), "{err}");
}

#[test]
fn same_build_falls_back_to_file_names() {
    let (a, _) = runs();
    let dir = tempfile::tempdir().unwrap();
    let pa = write(dir.path(), "up.jsonl", &mut JsonlPrinter, &a);
    let pb = write(dir.path(), "p.jsonl", &mut JsonlPrinter, &a);
    let cmp = compare_files(&pa, &pb).unwrap();
    assert_eq!((cmp.label_a.as_str(), cmp.label_b.as_str()), ("up", "p"));
    assert!(cmp.rows.iter().all(|r| r.speedup == 1.0));
}

#[test]
fn shown_values_follow_the_script() {
    assert_eq!(
        short_model_name("qwen3next 80B.A3B Q4_K - Medium"),
        "qwen3next 80B.A3B Q4_K_M"
    );
    assert_eq!(shown_value("flash_attn", "1"), "Yes");
    assert_eq!(shown_value("flash_attn", "-1"), "No");
    assert_eq!(
        shown_value(
            "gpu_info",
            "NVIDIA GeForce RTX 4090, NVIDIA GeForce RTX 4090"
        ),
        "2x RTX 4090"
    );
    assert_eq!(pretty_name("n_ubatch"), "Microbatch size");
}
