//! Times `CONCAT` as Qwen3-Next-80B-A3B's conv input builds it (the conv state `[3, 8192]` joined
//! along dim 0 with a transposed view of the new tokens), at one decode token, a 512-token prompt
//! ubatch and 2048 tokens, on the CPU.
//!
//! ```sh
//! cargo run --release -p llamacpp-ops --example concat_speed
//! LLAMACPP_SYS_PATCHES=none cargo run --release -p llamacpp-ops --example concat_speed
//! ```
//!
//! Options: `--threads N` (2), `--reps N` (30), `--channels N` (8192). Each row: median and
//! fastest time per graph (after two warm-up runs).

use std::error::Error;

use llamacpp_ops::Device;
use llamacpp_ops::concat::{Concat, Elem, View, random_base};
use llamacpp_ops::timing::median_min_ms;
use llamacpp_sys::build_info;

fn main() -> Result<(), Box<dyn Error>> {
    let (mut threads, mut reps, mut channels) = (2usize, 30usize, 8192usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .ok_or(format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--threads" => threads = value,
            "--reps" => reps = value.max(1),
            "--channels" => channels = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    println!(
        "{} build, {threads} threads, conv state [3, {channels}] ++ transposed tokens",
        build_info::VARIANT
    );
    println!("| tokens | median ms | min ms |");
    println!("|---:|---:|---:|");
    for tokens in [1, 512, 2048] {
        let state = View::contiguous([3, channels, 1, 1]);
        let new = View {
            base: [channels, tokens, 1, 1],
            ne: [channels, tokens, 1, 1],
            start: [0; 4],
            perm: [1, 0, 2, 3],
        };
        let b0 = random_base(Elem::F32, &state, 1);
        let b1 = random_base(Elem::F32, &new, 2);
        let op = Concat::on(
            Device::cpu(),
            Elem::F32,
            0,
            [&state, &new],
            [&b0, &b1],
            threads,
        )?;
        let (median, min) = median_min_ms(reps, || op.compute())?;
        println!("| {tokens} | {:.4} | {:.4} |", median, min);
    }
    Ok(())
}
