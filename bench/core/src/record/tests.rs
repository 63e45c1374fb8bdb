//! Building results from instances and samples.

use super::*;
use crate::fixtures::readme_pp512;

#[test]
fn result_from_instance_and_samples() {
    let r = readme_pp512();
    assert_eq!(r.model_filename, "models/Qwen2.5-7B-Instruct-Q4_K_M.gguf");
    assert_eq!((r.n_prompt, r.n_gen, r.n_depth), (512, 0, 0));
    assert_eq!((r.n_batch, r.n_ubatch, r.n_threads), (2048, 512, 8));
    assert_eq!((r.type_k.as_str(), r.split_mode.as_str()), ("f16", "layer"));
    assert_eq!(r.flash_attn, -1);
    assert_eq!(r.devices, "auto");
    assert_eq!(r.tensor_split, "0.00");
    assert_eq!(r.tensor_buft_overrides, "none");
    assert_eq!(
        (r.load_mode.as_str(), r.lazy_mode.as_str()),
        ("auto", "auto")
    );
    assert!(r.repack);
    assert_eq!(r.avg_ns, 72_135_640);
    assert_eq!(r.stddev_ns, 1_453_752);
    assert_eq!(fixed6(r.avg_ts), "7100.002165");
    assert_eq!(fixed6(r.stddev_ts), "140.341520");
    let ts: Vec<String> = r.samples_ts.iter().map(|&t| general6(t)).collect();
    assert_eq!(ts, ["6863.1", "7147.55", "7136.37", "7115.79", "7237.21"]);
}

#[test]
fn field_values_are_upstreams_text() {
    let v = readme_pp512().field_values();
    assert_eq!(
        v.join(","),
        "8cf427ff,5163,AMD Ryzen 7 7800X3D 8-Core Processor,NVIDIA GeForce RTX 4080,CUDA,\
         models/Qwen2.5-7B-Instruct-Q4_K_M.gguf,qwen2 7B Q4_K - Medium,4677120000,7615616512,\
         2048,512,8,0x0,0,50,f16,f16,-1,0,layer,0,0,-1,auto,0.00,none,auto,auto,0,0,0,1,0,0,512,0,0,\
         2025-04-24T11:58:50Z,72135640,1453752,7100.002165,140.341520"
    );
}

#[test]
fn test_names() {
    assert_eq!(test_name(512, 0, 0), "pp512");
    assert_eq!(test_name(0, 128, 0), "tg128");
    assert_eq!(test_name(512, 128, 0), "pp512+tg128");
    assert_eq!(test_name(512, 0, 4096), "pp512 @ d4096");
    assert_eq!(compare_test_name(0, 128, 4096), "tg128@d4096");
    assert_eq!(compare_test_name(512, 128, 0), "pp512+tg128");
}
