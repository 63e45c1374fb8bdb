//! Times `MUL_MAT_ID` with repacked weights on Qwen3-Next-80B-A3B's expert shapes
//! (n_embd 2048, expert FFN 512, 512 experts, top-10): the gate/up projection (src1 one row
//! per token, broadcast over the slots) and the down projection (one row per slot). With 512
//! tokens each expert gets about 10 rows.
//!
//! ```sh
//! cargo run --release -p llamacpp-ops --example mul_mat_id_speed
//! cargo run --release -p llamacpp-ops --example mul_mat_id_speed -- --tokens 1 --types q4_0
//! LLAMACPP_SYS_PATCHES=none cargo run --release -p llamacpp-ops --example mul_mat_id_speed
//! ```
//!
//! Options: `--threads N` (2), `--tokens N` (512), `--experts N` (512), `--used N` (10),
//! `--routing uniform|skewed` (uniform), `--reps N` (10), `--types a,b` (q4_0,q4_K),
//! `--dump DIR` (write each dst as raw little-endian f32, to compare variants byte for byte).
//! `rows/expert` is the mean over the experts that got any row; `ms/op` the median, `min ms`
//! the fastest of the timed runs (after two warm-up runs).

use std::error::Error;
use std::time::Instant;

use llamacpp_ops::mul_mat_id::{Inputs, MulMatId, Routing, Shape, Src1Layout};
use llamacpp_ops::{BufferType, GgmlType, type_name};
use llamacpp_sys::build_info;

struct Options {
    threads: usize,
    tokens: usize,
    experts: usize,
    used: usize,
    routing: Routing,
    reps: usize,
    types: Vec<GgmlType>,
    dump: Option<std::path::PathBuf>,
}

fn parse() -> Result<Options, Box<dyn Error>> {
    let mut o = Options {
        threads: 2,
        tokens: 512,
        experts: 512,
        used: 10,
        routing: Routing::Uniform,
        reps: 10,
        types: vec![llamacpp_sys::GGML_TYPE_Q4_0, llamacpp_sys::GGML_TYPE_Q4_K],
        dump: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => o.threads = value()?.parse()?,
            "--tokens" => o.tokens = value()?.parse()?,
            "--experts" => o.experts = value()?.parse()?,
            "--used" => o.used = value()?.parse()?,
            "--routing" => {
                o.routing = match value()?.as_str() {
                    "uniform" => Routing::Uniform,
                    "skewed" => Routing::Skewed,
                    other => return Err(format!("--routing {other}: uniform or skewed").into()),
                }
            }
            "--reps" => o.reps = value()?.parse()?,
            "--dump" => o.dump = Some(value()?.into()),
            "--types" => {
                o.types = value()?
                    .split(',')
                    .map(|name| {
                        (0..llamacpp_sys::GGML_TYPE_COUNT)
                            .find(|&t| type_name(t).eq_ignore_ascii_case(name))
                            .ok_or(format!("unknown type {name}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => {
                return Err(
                    format!("unknown option {flag} (see the example's doc comment)").into(),
                );
            }
        }
    }
    Ok(o)
}

fn main() -> Result<(), Box<dyn Error>> {
    let o = parse()?;
    let repack = BufferType::cpu_repack().ok_or("this build has no CPU_REPACK buffer type")?;
    println!(
        "variant {} ({}), {} threads, {} tokens, top-{} of {} experts ({:?} routing), median of {} runs",
        build_info::VARIANT,
        build_info::BUILD_COMMIT,
        o.threads,
        o.tokens,
        o.used,
        o.experts,
        o.routing,
        o.reps
    );
    println!(
        "{:<7} {:<8} {:>14} {:>10} {:>10}",
        "type", "op", "rows/expert", "ms/op", "min ms"
    );
    let ops = [
        ("gate/up", 2048, 512, Src1Layout::Broadcast),
        ("down", 512, 2048, Src1Layout::PerSlot),
    ];
    for &ty in &o.types {
        for (seed, &(name, k, m, layout)) in ops.iter().enumerate() {
            let shape = Shape {
                k,
                m,
                n_expert: o.experts,
                n_used: o.used,
                n_tokens: o.tokens,
            };
            // 8 distinct experts repeated: the same memory traffic as 512 distinct ones.
            let inputs = Inputs::random(ty, shape, layout, o.routing, Some(8), seed as u64)?;
            let op = MulMatId::new(ty, shape, layout, &inputs, repack, o.threads)?;
            if !op.weight_repacked() {
                return Err(format!("{} weights were not repacked", type_name(ty)).into());
            }
            let counts = inputs.rows_per_expert(shape.n_expert);
            let active = counts.iter().filter(|&&c| c > 0).count();
            drop(inputs);

            op.compute()?;
            op.compute()?;
            let mut ms = Vec::with_capacity(o.reps);
            for _ in 0..o.reps.max(1) {
                let t = Instant::now();
                op.compute()?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            ms.sort_by(f64::total_cmp);
            println!(
                "{:<7} {:<8} {:>14.1} {:>10.3} {:>10.3}",
                type_name(ty),
                name,
                (shape.n_tokens * shape.n_used) as f64 / active as f64,
                ms[ms.len() / 2],
                ms[0]
            );
            if let Some(dir) = &o.dump {
                std::fs::create_dir_all(dir)?;
                let file = dir.join(format!(
                    "{}-{}-{}.f32",
                    type_name(ty),
                    name.replace('/', "_"),
                    o.tokens
                ));
                let bytes: Vec<u8> = op.output().iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(file, bytes)?;
            }
        }
    }
    Ok(())
}
