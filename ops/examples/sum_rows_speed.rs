//! Times the MoE expert sum of Qwen3-Next-80B-A3B (n_embd 2048, top-10): one `SUM_ROWS`
//! over the permuted view of the weighted experts (patch 0004) against the chain of views
//! and 9 `ADD` nodes upstream builds, for a decode step and a prompt ubatch.
//!
//! ```sh
//! cargo run --release -p llamacpp-ops --example sum_rows_speed
//! cargo run --release -p llamacpp-ops --example sum_rows_speed -- --threads 4 --reps 50
//! ```
//!
//! Options: `--threads N` (2), `--reps N` (30), `--embd N` (2048), `--used N` (10). Each row:
//! median and fastest time per graph (after two warm-up runs). On upstream the `SUM_ROWS`
//! rows are left out (its CPU kernel asserts a contiguous dim 0).

use std::error::Error;

use llamacpp_ops::sum_rows::{Method, SumRows, View, random_base};
use llamacpp_ops::timing::median_min_ms;
use llamacpp_sys::build_info;

fn main() -> Result<(), Box<dyn Error>> {
    let (mut threads, mut reps, mut embd, mut used) = (2usize, 30usize, 2048usize, 10usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .ok_or(format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--threads" => threads = value,
            "--reps" => reps = value.max(1),
            "--embd" => embd = value,
            "--used" => used = value,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    println!(
        "{} build, {threads} threads, n_embd {embd}, top-{used}",
        build_info::VARIANT
    );
    println!("| tokens | graph | median ms | min ms |");
    println!("|---:|---|---:|---:|");
    for tokens in [1, 512] {
        let view = View::moe(embd, used, used, tokens);
        let base = random_base(&view, 1);
        for method in [Method::AddChain, Method::SumRows] {
            if method == Method::SumRows && build_info::VARIANT != "patched" {
                continue;
            }
            let op = SumRows::with_method(&view, &base, threads, method)?;
            let (median, min) = median_min_ms(reps, || op.compute())?;
            println!("| {tokens} | {method:?} | {:.4} | {:.4} |", median, min);
        }
    }
    Ok(())
}
