//! Op timings on the CPU at Qwen3-Next-80B-A3B's shapes (n_embd 2048, 512 experts top-10, expert
//! FFN 512, 8192 conv channels), one criterion group per op:
//!
//! - `binary`: `MUL` with one `src1` value per row, the MoE expert weighting
//!   (`[2048, 10, T] * [1, 10, T]`) and the shared-expert gate (`[2048, T] * [1, T]`), for a
//!   decode token and a 512-token ubatch (throughput: bytes read and written per run);
//! - `concat`: the conv input, the conv state `[3, 8192]` joined along dim 0 with a transposed
//!   view of the new tokens, at 1, 512 and 2048 tokens;
//! - `gated_delta_net`: Qwen3-Next's linear attention (head size 128, 16 q/k heads, 32 value
//!   heads, q/k laid out as the model's fused projection), the form both builds have (tiled
//!   broadcast, state in the output, q/k given normalised), for a decode token and a 512-token
//!   ubatch;
//! - `mul_mat_id`: the expert matmul with the weights in the `CPU_REPACK` buffer, Q4_0, Q4_K and
//!   Q8_0, gate/up (src1 one row per token, broadcast over the slots) and down (one row per slot),
//!   at 1 and 512 tokens (about 10 rows per expert), uniform routing; 8 distinct experts are
//!   repeated, the same memory traffic as 512 (upstream repacks Q8_0 on x86 only with VNNI, so
//!   there its case times the plain CPU path, and says so);
//! - `ssm_conv`: 8192 channels, 4 taps, at 1, 512 and 2048 tokens;
//! - `sum_rows`: the MoE expert sum, the chain of views and 9 `ADD` nodes upstream builds against
//!   one `SUM_ROWS` over the permuted view (patch 0004; left out where the build lacks the
//!   capability `sum-rows-strided-dim0`, as upstream's kernel asserts a contiguous dim 0), for a
//!   decode step and a 512-token ubatch.
//!
//! ```sh
//! cargo bench -p llamacpp-ops --bench ops                        # every group
//! cargo bench -p llamacpp-ops --bench ops -- mul_mat_id          # the groups matching a filter
//! LLAMACPP_SYS_PATCHES=none cargo bench -p llamacpp-ops --bench ops -- sum_rows   # upstream
//! cargo bench -p llamacpp-ops --bench ops -- --test              # every case once (smoke test)
//! ```
//!
//! `LLAMACPP_BENCH_THREADS` sets the CPU threads (default 1: spinning thread barriers dominate a
//! loaded machine). With `LLAMACPP_BENCH_DUMP=DIR`, the `mul_mat_id`, `ssm_conv` and
//! `gated_delta_net` cases write their output as raw little-endian f32 into `DIR`
//! (`<type>-<op>-<tokens>.f32`, `ssm_conv-<tokens>.f32`, `gated_delta_net-<tokens>.f32`: the
//! scores, then the state), to compare the variants byte for byte. An op is built only when
//! its case runs (a filter that leaves a case out builds nothing) and freed when it is done.

use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use llamacpp_ops::binary::{Binary, BinaryOp, Src1};
use llamacpp_ops::concat::{Concat, Elem};
use llamacpp_ops::gated_delta_net::{
    Bcast, GatedDeltaNet, Inputs as GdnInputs, QkNorm, QkvLayout, Shape as GdnShape, StateMode,
};
use llamacpp_ops::mul_mat_id::{Inputs, MulMatId, Routing, Shape as MoeShape, Src1Layout};
use llamacpp_ops::ssm_conv::{Shape as ConvShape, SsmConv};
use llamacpp_ops::sum_rows::{Method, SumRows};
use llamacpp_ops::view::View;
use llamacpp_ops::{BufferType, Device, TensorType, capability};
use llamacpp_sys::build_info;

/// Qwen3-Next-80B-A3B's embedding width.
const N_EMBD: usize = 2048;
/// Its conv channels.
const CHANNELS: usize = 8192;

fn threads() -> usize {
    std::env::var("LLAMACPP_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

fn dump_dir() -> Option<PathBuf> {
    std::env::var_os("LLAMACPP_BENCH_DUMP").map(PathBuf::from)
}

/// Writes `values` as raw little-endian f32 to `DIR/name` when `LLAMACPP_BENCH_DUMP` is set.
fn dump(name: &str, values: &[f32]) {
    let Some(dir) = dump_dir() else { return };
    std::fs::create_dir_all(&dir).expect("create the dump directory");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join(name), bytes).expect("write the dump");
}

/// Times `compute` on the op `build` makes, as case `id` of `group`. The op is built on the
/// first run of the case (not at all when a filter leaves it out), handed to `done` afterwards
/// and then dropped.
fn bench_op<T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    build: impl FnOnce() -> T,
    compute: impl Fn(&T),
    done: impl FnOnce(&T),
) {
    let mut build = Some(build);
    let mut op: Option<T> = None;
    group.bench_function(id, |b| {
        let op = op.get_or_insert_with(|| (build.take().expect("the op is built once"))());
        b.iter(|| compute(op));
    });
    if let Some(op) = &op {
        done(op);
    }
}

fn binary(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group("binary");
    for tokens in [1, 512] {
        for (name, ne) in [
            ("expert_weights", [N_EMBD, 10, tokens, 1]),
            ("shared_expert_gate", [N_EMBD, tokens, 1, 1]),
        ] {
            let view = View::contiguous(ne);
            let src1 = Src1 {
                ne: [1, ne[1], ne[2], 1],
                width: 1,
                column: 0,
            };
            let bytes = (2 * view.base_len() + src1.base_len()) * size_of::<f32>();
            group.throughput(Throughput::Bytes(bytes as u64));
            bench_op(
                &mut group,
                BenchmarkId::new(name, tokens),
                || {
                    let (base0, base1) = llamacpp_ops::binary::random_inputs(&view, &src1, 1);
                    let bases = (&base0[..], &base1[..]);
                    Binary::on(Device::cpu(), BinaryOp::Mul, &view, &src1, bases, threads)
                        .expect("build MUL")
                },
                |op| op.compute().expect("compute MUL"),
                |_| {},
            );
        }
    }
    group.finish();
}

fn concat(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group("concat");
    for tokens in [1, 512, 2048] {
        bench_op(
            &mut group,
            BenchmarkId::new("conv_input", tokens),
            || {
                let state = View::contiguous([3, CHANNELS, 1, 1]);
                let new = View {
                    base: [CHANNELS, tokens, 1, 1],
                    ne: [CHANNELS, tokens, 1, 1],
                    start: [0; 4],
                    perm: [1, 0, 2, 3],
                };
                let b0 = llamacpp_ops::concat::random_base(Elem::F32, &state, 1);
                let b1 = llamacpp_ops::concat::random_base(Elem::F32, &new, 2);
                let (views, bases) = ([&state, &new], [&b0[..], &b1[..]]);
                Concat::on(Device::cpu(), Elem::F32, 0, views, bases, threads)
                    .expect("build CONCAT")
            },
            |op| op.compute().expect("compute CONCAT"),
            |_| {},
        );
    }
    group.finish();
}

fn mul_mat_id(c: &mut Criterion, threads: usize) {
    let Some(repack) = BufferType::cpu_repack() else {
        eprintln!("mul_mat_id: skipped (this build has no CPU_REPACK buffer type)");
        return;
    };
    let mut group = c.benchmark_group("mul_mat_id");
    let ops = [
        ("gate_up", N_EMBD, 512, Src1Layout::Broadcast),
        ("down", 512, N_EMBD, Src1Layout::PerSlot),
    ];
    for ty in [TensorType::Q4_0, TensorType::Q4_K, TensorType::Q8_0] {
        for tokens in [512, 1] {
            for (seed, &(name, k, m, layout)) in ops.iter().enumerate() {
                let shape = MoeShape {
                    k,
                    m,
                    n_expert: 512,
                    n_used: 10,
                    n_tokens: tokens,
                };
                let id = format!("{}/{name}", ty.name());
                bench_op(
                    &mut group,
                    BenchmarkId::new(id, tokens),
                    || {
                        let routing = Routing::Uniform;
                        let inputs =
                            Inputs::random(ty, shape, layout, routing, Some(8), seed as u64)
                                .expect("inputs");
                        // upstream repacks Q8_0 on x86 only with VNNI (patch 0036 adds
                        // AVX2): where the repack buffer refuses it, the case times the
                        // plain CPU path
                        let op = match MulMatId::new(ty, shape, layout, &inputs, repack, threads) {
                            Err(_) if ty == TensorType::Q8_0 => {
                                eprintln!("mul_mat_id q8_0: not repacked in this build");
                                MulMatId::new(
                                    ty,
                                    shape,
                                    layout,
                                    &inputs,
                                    BufferType::cpu(),
                                    threads,
                                )
                            }
                            built => built,
                        }
                        .expect("build MUL_MAT_ID");
                        assert!(
                            op.weight_repacked() || ty == TensorType::Q8_0,
                            "{} weights were not repacked",
                            ty.name()
                        );
                        let counts = inputs.rows_per_expert(shape.n_expert);
                        let active = counts.iter().filter(|&&c| c > 0).count();
                        eprintln!(
                            "mul_mat_id {} {name}, {tokens} tokens: {:.1} rows per active expert",
                            ty.name(),
                            (tokens * shape.n_used) as f64 / active as f64
                        );
                        op
                    },
                    |op| op.compute().expect("compute MUL_MAT_ID"),
                    |op| {
                        let file = format!("{}-{}-{tokens}.f32", ty.name(), name);
                        dump(&file, &op.output());
                    },
                );
            }
        }
    }
    group.finish();
}

fn gated_delta_net(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group("gated_delta_net");
    for tokens in [1, 512] {
        let shape = GdnShape {
            s_v: 128,
            h_k: 16,
            h_v: 32,
            n_tokens: tokens,
            n_seqs: 1,
            snapshots: 1,
        };
        bench_op(
            &mut group,
            BenchmarkId::new("qwen3next", tokens),
            || {
                let inputs = GdnInputs::random(shape, 1);
                GatedDeltaNet::new(
                    shape,
                    QkvLayout::Fused,
                    Bcast::Tiled,
                    StateMode::Output,
                    QkNorm::Given,
                    &inputs,
                    threads,
                )
                .expect("build GATED_DELTA_NET")
            },
            |op| op.compute().expect("compute GATED_DELTA_NET"),
            |op| {
                let out = op.output();
                dump(
                    &format!("gated_delta_net-{tokens}.f32"),
                    &[out.attn, out.states].concat(),
                )
            },
        );
    }
    group.finish();
}

fn ssm_conv(c: &mut Criterion, threads: usize) {
    let mut group = c.benchmark_group("ssm_conv");
    for tokens in [1, 512, 2048] {
        let shape = ConvShape {
            d_conv: 4,
            d_inner: CHANNELS,
            n_t: tokens,
            n_s: 1,
        };
        bench_op(
            &mut group,
            BenchmarkId::new("channels_8192", tokens),
            || {
                let view = View::contiguous(shape.input());
                let (base, weights) = llamacpp_ops::ssm_conv::random_inputs(&shape, &view, 1);
                SsmConv::on(Device::cpu(), &shape, &view, &base, &weights, threads)
                    .expect("build SSM_CONV")
            },
            |op| op.compute().expect("compute SSM_CONV"),
            |op| dump(&format!("ssm_conv-{tokens}.f32"), &op.output()),
        );
    }
    group.finish();
}

fn sum_rows(c: &mut Criterion, threads: usize) {
    let strided = capability::has(capability::SUM_ROWS_STRIDED_DIM0);
    if !strided {
        eprintln!(
            "sum_rows: the SUM_ROWS cases are left out on the {} build (no {})",
            build_info::VARIANT,
            capability::SUM_ROWS_STRIDED_DIM0
        );
    }
    let mut group = c.benchmark_group("sum_rows");
    for tokens in [1, 512] {
        let view = View::moe(N_EMBD, 10, 10, tokens);
        for (name, method) in [
            ("add_chain", Method::AddChain),
            ("sum_rows", Method::SumRows),
        ] {
            if method == Method::SumRows && !strided {
                continue;
            }
            bench_op(
                &mut group,
                BenchmarkId::new(name, tokens),
                || {
                    let base = llamacpp_ops::sum_rows::random_base(&view, 1);
                    SumRows::with_method(&view, &base, threads, method).expect("build the sum")
                },
                |op| op.compute().expect("compute the sum"),
                |_| {},
            );
        }
    }
    group.finish();
}

fn main() {
    let threads = threads();
    eprintln!(
        "{} build ({}), {threads} thread(s)",
        build_info::VARIANT,
        build_info::BUILD_COMMIT
    );
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    binary(&mut c, threads);
    concat(&mut c, threads);
    gated_delta_net(&mut c, threads);
    mul_mat_id(&mut c, threads);
    ssm_conv(&mut c, threads);
    sum_rows(&mut c, threads);
    c.final_summary();
}
