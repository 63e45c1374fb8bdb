//! Results shared by the tests of several modules.

use crate::params::BenchParams;
use crate::record::{BuildInfo, ModelInfo, SystemInfo, TestResult};

/// A result like upstream README's pp512 example.
pub fn readme_pp512() -> TestResult {
    let params =
        BenchParams::parse_args(["-m", "models/Qwen2.5-7B-Instruct-Q4_K_M.gguf", "-t", "8"])
            .unwrap();
    let inst = &params.instances()[0];
    let mut r = TestResult::new(
        inst,
        &BuildInfo {
            commit: "8cf427ff".into(),
            number: 5163,
        },
        &SystemInfo {
            cpu_info: "AMD Ryzen 7 7800X3D 8-Core Processor".into(),
            gpu_info: "NVIDIA GeForce RTX 4080".into(),
            backends: "CUDA".into(),
        },
        &ModelInfo {
            model_type: "qwen2 7B Q4_K - Medium".into(),
            model_size: 4_677_120_000,
            model_n_params: 7_615_616_512,
        },
    );
    r.test_time = "2025-04-24T11:58:50Z".into();
    r.set_samples(vec![
        74_601_900, 71_632_900, 71_745_200, 71_952_700, 70_745_500,
    ]);
    r
}

/// The README example's run as a whole: pp512 and tg128, then both again at depth 512.
pub fn readme_run() -> Vec<TestResult> {
    let pp = readme_pp512();
    let mut tg = pp.clone();
    (tg.n_prompt, tg.n_gen) = (0, 128);
    tg.test_time = "2025-04-24T11:58:51Z".into();
    tg.set_samples(vec![
        1_075_361_300,
        1_065_089_400,
        1_071_761_200,
        1_081_934_900,
        1_089_692_600,
    ]);
    let deep: Vec<TestResult> = [&pp, &tg]
        .into_iter()
        .map(|r| {
            let mut d = r.clone();
            d.n_depth = 512;
            let slower: Vec<u64> = r.samples_ns.iter().map(|ns| ns + ns / 10).collect();
            d.set_samples(slower);
            d
        })
        .collect();
    let mut all = vec![pp, tg];
    all.extend(deep);
    all
}
