//! Times `MUL` with one `src1` value per row at Qwen3-Next-80B-A3B's shapes (n_embd 2048): the
//! MoE expert weighting (`[2048, 10, T] * [1, 10, T]`) and the shared-expert gate
//! (`[2048, T] * [1, T]`), for a decode token and a 512-token ubatch, on the CPU.
//!
//! ```sh
//! cargo run --release -p llamacpp-ops --example binary_speed
//! LLAMACPP_SYS_PATCHES=none cargo run --release -p llamacpp-ops --example binary_speed
//! ```
//!
//! Options: `--threads N` (2), `--reps N` (50). Each row: median and fastest time per graph
//! (after two warm-up runs) and the bytes read and written per run over the median time.

use std::error::Error;

use llamacpp_ops::Device;
use llamacpp_ops::binary::{Binary, BinaryOp, Src1, View, random_inputs};
use llamacpp_ops::timing::median_min_ms;
use llamacpp_sys::build_info;

fn main() -> Result<(), Box<dyn Error>> {
    let (mut threads, mut reps) = (2usize, 50usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .ok_or(format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--threads" => threads = value,
            "--reps" => reps = value.max(1),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    println!("{} build, {threads} threads, MUL", build_info::VARIANT);
    println!("| shape | tokens | median ms | min ms | GB/s |");
    println!("|---|---:|---:|---:|---:|");
    for tokens in [1, 512] {
        for (name, ne) in [
            ("expert weights", [2048, 10, tokens, 1]),
            ("shared-expert gate", [2048, tokens, 1, 1]),
        ] {
            let view = View::contiguous(ne);
            let src1 = Src1 {
                ne: [1, ne[1], ne[2], 1],
                width: 1,
                column: 0,
            };
            let (base0, base1) = random_inputs(&view, &src1, 1);
            let op = Binary::on(
                Device::cpu(),
                BinaryOp::Mul,
                &view,
                &src1,
                (&base0, &base1),
                threads,
            )?;
            let (median, min) = median_min_ms(reps, || op.compute())?;
            let bytes = (2 * base0.len() + base1.len()) * 4;
            println!(
                "| {name} | {tokens} | {median:.4} | {:.4} | {:.1} |",
                min,
                bytes as f64 / median / 1e6
            );
        }
    }
    Ok(())
}
