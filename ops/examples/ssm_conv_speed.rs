//! Times `SSM_CONV` at Qwen3-Next-80B-A3B's shape (8192 channels, 4 taps): a 512-token prompt
//! ubatch and one decode token, on the CPU.
//!
//! ```sh
//! cargo run --release -p llamacpp-ops --example ssm_conv_speed
//! LLAMACPP_SYS_PATCHES=none cargo run --release -p llamacpp-ops --example ssm_conv_speed
//! ```
//!
//! Options: `--threads N` (2), `--reps N` (30), `--channels N` (8192), `--dump DIR` (write each
//! output as raw little-endian f32, to compare the variants byte for byte). Each row: median and
//! fastest time per graph (after two warm-up runs).

use std::error::Error;

use llamacpp_ops::Device;
use llamacpp_ops::ssm_conv::{Shape, SsmConv, View, random_inputs};
use llamacpp_ops::timing::median_min_ms;
use llamacpp_sys::build_info;

fn main() -> Result<(), Box<dyn Error>> {
    let (mut threads, mut reps, mut channels) = (2usize, 30usize, 8192usize);
    let mut dump: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let raw = args.next().ok_or(format!("{flag} needs a value"))?;
        if flag == "--dump" {
            dump = Some(raw.into());
            continue;
        }
        let value: usize = raw.parse()?;
        match flag.as_str() {
            "--threads" => threads = value,
            "--reps" => reps = value.max(1),
            "--channels" => channels = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    println!(
        "{} build, {threads} threads, {channels} channels, 4 taps",
        build_info::VARIANT
    );
    println!("| tokens | median ms | min ms |");
    println!("|---:|---:|---:|");
    for tokens in [1, 512, 2048] {
        let shape = Shape {
            d_conv: 4,
            d_inner: channels,
            n_t: tokens,
            n_s: 1,
        };
        let view = View::contiguous(shape.input());
        let (base, weights) = random_inputs(&shape, &view, 1);
        let op = SsmConv::on(Device::cpu(), &shape, &view, &base, &weights, threads)?;
        let (median, min) = median_min_ms(reps, || op.compute())?;
        if let Some(dir) = &dump {
            let bytes: Vec<u8> = op.output().iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("ssm_conv-{tokens}.f32")), bytes)?;
        }
        println!("| {tokens} | {:.4} | {:.4} |", median, min);
    }
    Ok(())
}
