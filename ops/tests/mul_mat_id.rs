//! `MUL_MAT_ID` with the expert weights in the CPU's repack buffer, against an F32
//! reference, for every type this build repacks; `generic_path_blocks` does the same for the
//! generic path (weights in the plain CPU buffer) and the types it serves.
//!
//! `every_device` runs the op with every tensor in each device's own buffer type (the CPU's
//! plain buffer, i.e. its generic kernels, and each other device of the build, such as Vulkan,
//! which must run all of its cases) against the reference and the CPU.
//!
//! Run in both variants: `cargo test -p llamacpp-ops` (patched) and
//! `LLAMACPP_SYS_PATCHES=none cargo test -p llamacpp-ops` (upstream). Duplicated ids that give an
//! expert more rows than there are tokens are asserted only where the build has the capability
//! `mul-mat-id-repack-repeated-experts` (patch 0002, so the patched build): upstream sizes the
//! repacked path's per-expert row lists by tokens, so such an expert overflows its list into the
//! next expert's.

use std::collections::BTreeSet;

use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};
use llamacpp_ops::mul_mat_id::{
    Inputs, MulMatId, Routing, Shape, Src1Layout, reference, repacked_types,
};
use llamacpp_ops::{BufferType, Device, MATMUL_NMSE_THRESHOLD, TensorType, capability, nmse};
use llamacpp_sys::build_info;

/// Columns (`n_embd` of a small model; a multiple of every block size, 256 for the K-quants).
const K: usize = 256;

fn types() -> Vec<TensorType> {
    let types = repacked_types(K, 64).expect("probe the repack buffer");
    assert!(
        !types.is_empty(),
        "this build repacks no type: the tests would not reach the repacked kernels"
    );
    types
}

struct Case {
    ty: TensorType,
    shape: Shape,
    layout: Src1Layout,
    routing: Routing,
    threads: usize,
    seed: u64,
}

impl Case {
    /// Runs the op with the weights in the repack buffer; returns the NMSE against the
    /// reference and the rows each expert got.
    fn run(&self) -> (f64, Vec<usize>) {
        let repack = BufferType::cpu_repack().expect("this build has a CPU_REPACK buffer type");
        self.run_in(repack, true)
    }

    /// Runs the case with its weights in `buffer`, which must (or must not) repack them.
    fn run_in(&self, buffer: BufferType, repacked: bool) -> (f64, Vec<usize>) {
        let inputs = Inputs::random(
            self.ty,
            self.shape,
            self.layout,
            self.routing,
            None,
            self.seed,
        )
        .expect("inputs");
        let op = MulMatId::new(
            self.ty,
            self.shape,
            self.layout,
            &inputs,
            buffer,
            self.threads,
        )
        .expect("build the graph");
        assert_eq!(
            op.weight_repacked(),
            repacked,
            "{}: weights in {}: repacked is not {repacked}, so another path would be tested",
            self.name(),
            op.weight_buffer_name()
        );
        {
            let _turn = serial();
            op.compute().expect("compute");
        }
        let want = reference(self.ty, self.shape, self.layout, &inputs).expect("reference");
        (
            nmse(&op.output(), &want),
            inputs.rows_per_expert(self.shape.n_expert),
        )
    }

    fn name(&self) -> String {
        let s = self.shape;
        format!(
            "{} {}x{} top-{} of {} experts, {} tokens, {:?} src1, {:?} ids, {} threads",
            self.ty.name(),
            s.m,
            s.k,
            s.n_used,
            s.n_expert,
            s.n_tokens,
            self.layout,
            self.routing,
            self.threads
        )
    }

    fn assert_ok(&self) -> Vec<usize> {
        let (err, counts) = self.run();
        eprintln!("{}: NMSE {err:.3e}", self.name());
        assert!(
            err < MATMUL_NMSE_THRESHOLD,
            "{}: NMSE {err:.3e} above {MATMUL_NMSE_THRESHOLD:e}",
            self.name()
        );
        counts
    }
}

#[test]
fn repack_buffer_takes_the_types_this_host_supports() {
    let types = types();
    let names: Vec<&str> = types.iter().map(|&t| t.name()).collect();
    eprintln!("repacked here: {names:?}");
    // The default build targets AVX2, where Q4_0 and Q4_K are always repacked.
    if cfg!(target_arch = "x86_64") {
        for want in [TensorType::Q4_0, TensorType::Q4_K] {
            assert!(types.contains(&want), "{} not repacked", want.name());
        }
    }
    // Patch 0036 adds Q8_0 there (the tests below then run its AVX2 or VNNI kernels).
    if cfg!(target_arch = "x86_64") && capability::has(capability::CPU_X86_Q8_0_REPACK_AVX2) {
        assert!(types.contains(&TensorType::Q8_0), "Q8_0 not repacked");
    }
    // On ARM, ggml repacks Q4_0 wherever the CPU has the dot-product instructions (every core
    // since ARMv8.2); `.ci/aarch64-check.sh` runs these tests on an emulated one.
    if cfg!(target_arch = "aarch64") && system_info().contains("DOTPROD = 1") {
        assert!(types.contains(&TensorType::Q4_0), "Q4_0 not repacked");
    }
}

/// ggml's CPU features as llama.cpp reports them (`NEON = 1 | DOTPROD = 1 | ...`).
fn system_info() -> String {
    // SAFETY: no arguments; returns a NUL-terminated string in a buffer that lives until the
    // next call, and no other test of this binary calls it.
    let p = unsafe { llamacpp_sys::llama_print_system_info() };
    assert!(!p.is_null());
    // SAFETY: non-null and NUL-terminated (above); copied before anything can call again.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// Qwen3-Next's routing: 512 experts, top-10. Token counts from 1 to 600 give experts 0, 1,
/// 3, 4, 5, 8 and many rows, i.e. gemv only, full 4-row tiles, tiles plus a remainder, and
/// several gemm calls per expert.
#[test]
fn many_small_experts_top10() {
    let mut seen = BTreeSet::new();
    let runs = [
        (1, Src1Layout::Broadcast, Routing::Uniform, 2),
        (1, Src1Layout::PerSlot, Routing::Uniform, 3),
        (3, Src1Layout::PerSlot, Routing::Skewed, 2),
        (17, Src1Layout::Broadcast, Routing::Skewed, 1),
        (51, Src1Layout::PerSlot, Routing::Uniform, 2),
        (200, Src1Layout::Broadcast, Routing::Uniform, 2),
        (600, Src1Layout::Broadcast, Routing::Skewed, 2),
        (600, Src1Layout::PerSlot, Routing::Uniform, 3),
    ];
    for ty in types() {
        for (i, &(n_tokens, layout, routing, threads)) in runs.iter().enumerate() {
            let shape = Shape {
                k: K,
                m: 16,
                n_expert: 512,
                n_used: 10,
                n_tokens,
            };
            let case = Case {
                ty,
                shape,
                layout,
                routing,
                threads,
                seed: 100 + i as u64,
            };
            seen.extend(case.assert_ok());
        }
    }
    for rows in [0, 1, 3, 4, 5, 8] {
        assert!(seen.contains(&rows), "no expert got {rows} rows: {seen:?}");
    }
    assert!(
        seen.iter().any(|&r| r >= 64),
        "no expert got many rows: {seen:?}"
    );
}

/// A few large experts (Mixtral-like routing: 8 experts, top-2): many rows per expert, and
/// each expert's columns split over the threads.
#[test]
fn few_large_experts_top2() {
    let runs = [
        (1, Src1Layout::Broadcast, 1),
        (3, Src1Layout::PerSlot, 2),
        (7, Src1Layout::Broadcast, 4),
        (64, Src1Layout::PerSlot, 3),
        (600, Src1Layout::Broadcast, 2),
        (600, Src1Layout::PerSlot, 4),
    ];
    for ty in types() {
        for (i, &(n_tokens, layout, threads)) in runs.iter().enumerate() {
            let shape = Shape {
                k: K,
                m: 64,
                n_expert: 8,
                n_used: 2,
                n_tokens,
            };
            Case {
                ty,
                shape,
                layout,
                routing: Routing::Uniform,
                threads,
                seed: 200 + i as u64,
            }
            .assert_ok();
        }
    }
}

/// src1 read through views: a permuted one (a token's rows are far apart) and one with
/// padded rows (NaN in the padding).
#[test]
fn non_contiguous_src1() {
    let runs = [
        (512, 10, 37, Src1Layout::Permuted),
        (512, 10, 600, Src1Layout::Permuted),
        (512, 10, 300, Src1Layout::Padded),
        (8, 2, 100, Src1Layout::Permuted),
        (8, 2, 100, Src1Layout::Padded),
    ];
    for ty in types() {
        for (i, &(n_expert, n_used, n_tokens, layout)) in runs.iter().enumerate() {
            let shape = Shape {
                k: K,
                m: 32,
                n_expert,
                n_used,
                n_tokens,
            };
            Case {
                ty,
                shape,
                layout,
                routing: Routing::Skewed,
                threads: 2,
                seed: 300 + i as u64,
            }
            .assert_ok();
        }
    }
}

/// The same expert in several slots of one token. With top-10 (and top-4 of 8) an expert
/// gets more rows than there are tokens, which overflows upstream's row lists: those cases
/// are asserted where the build has patch 0002's capability (see the top of this file), and
/// elsewhere (upstream) their error is printed. Top-2 of 8 repeats experts without
/// overflowing: asserted on both.
#[test]
fn duplicated_ids_within_a_token() {
    let asserted = capability::has(capability::MUL_MAT_ID_REPACK_REPEATED_EXPERTS);
    let runs = [(512, 10, 5), (512, 10, 64), (8, 2, 100), (8, 4, 100)];
    for ty in types() {
        for (i, &(n_expert, n_used, n_tokens)) in runs.iter().enumerate() {
            let shape = Shape {
                k: K,
                m: 32,
                n_expert,
                n_used,
                n_tokens,
            };
            let case = Case {
                ty,
                shape,
                layout: if i % 2 == 0 {
                    Src1Layout::Broadcast
                } else {
                    Src1Layout::PerSlot
                },
                routing: Routing::Duplicated,
                threads: 2,
                seed: 400 + i as u64,
            };
            let inputs = Inputs::random(ty, shape, case.layout, case.routing, None, case.seed)
                .expect("inputs");
            let counts = inputs.rows_per_expert(n_expert);
            let repeats = inputs.ids.chunks(n_used).any(|token| {
                let mut t = token.to_vec();
                t.sort_unstable();
                t.windows(2).any(|w| w[0] == w[1])
            });
            assert!(repeats, "{}: no token repeats an expert", case.name());
            assert!(
                n_used == 2 || counts.iter().any(|&c| c > n_tokens),
                "{}: no expert has more rows than tokens",
                case.name()
            );
            let overflows = counts.iter().any(|&c| c > n_tokens);
            if asserted || !overflows {
                case.assert_ok();
            } else if counts[n_expert - 1] <= n_tokens {
                // Upstream's overflow runs into the next expert's list; only the last
                // expert's would leave the work buffer, and that one does not overflow here.
                let (err, _) = case.run();
                eprintln!(
                    "{} on {}: NMSE {err:.3e} (not asserted: upstream row lists overflow)",
                    case.name(),
                    build_info::VARIANT
                );
            }
        }
    }
}

/// Every row count from 1 to 40 on each of two experts (top-2 of 2: each expert gets all the
/// tokens' rows): gemv alone, full 4-row tiles, tiles plus 1-3 rows (the patched build pads
/// 2 or 3 left over rows into a tile), and the x86 gemm's passes of 16, 12, 8 and 4 rows.
/// 64 columns take the AVX-512 kernels' 16-column passes; 24 columns leave 8 for the
/// 8-column passes that follow them.
#[test]
fn every_row_count_per_expert() {
    for ty in types() {
        for m in [64, 24] {
            let mut seen = BTreeSet::new();
            for n_tokens in 1..=40 {
                let case = Case {
                    ty,
                    shape: Shape {
                        k: K,
                        m,
                        n_expert: 2,
                        n_used: 2,
                        n_tokens,
                    },
                    layout: if n_tokens % 2 == 0 {
                        Src1Layout::Broadcast
                    } else {
                        Src1Layout::PerSlot
                    },
                    routing: Routing::Uniform,
                    threads: 1 + n_tokens % 3,
                    seed: 500 + n_tokens as u64,
                };
                seen.extend(case.assert_ok());
            }
            for rows in 1..=40 {
                assert!(seen.contains(&rows), "no expert got {rows} rows: {seen:?}");
            }
        }
    }
}

/// Rows in groups of four with an odd number of groups (36 rows: 9 groups, where the x86 Q8_0
/// kernel pairs groups) and long rows (2048 columns, 64 blocks), for every type the repack
/// buffer takes at that shape: one token (gemv) and several (gemm tiles and the remainder).
#[test]
fn odd_row_groups_long_rows() {
    let (k, m) = (2048, 36);
    let types = repacked_types(k, m).expect("probe the repack buffer");
    eprintln!(
        "repacked at {m}x{k}: {:?}",
        types.iter().map(|&t| t.name()).collect::<Vec<_>>()
    );
    for ty in types {
        for (i, &n_tokens) in [1, 5, 9, 64].iter().enumerate() {
            Case {
                ty,
                shape: Shape {
                    k,
                    m,
                    n_expert: 8,
                    n_used: 2,
                    n_tokens,
                },
                layout: Src1Layout::Broadcast,
                routing: Routing::Uniform,
                threads: 2,
                seed: 900 + i as u64,
            }
            .assert_ok();
        }
    }
}

/// Weight types of the generic (not repacked) CPU path test: the quantized types tinyBLAS has
/// kernels for on x86, and the 16-bit float types.
const GENERIC_TYPES: [TensorType; 6] = [
    TensorType::Q8_0,
    TensorType::Q4_0,
    TensorType::Q5_0,
    TensorType::IQ4_NL,
    TensorType::F16,
    TensorType::BF16,
];

/// The generic CPU path, weights in the CPU's plain buffer (what a Q8_0 model's experts use
/// on x86 without patch 0036, and any type no repacked kernel serves): experts with one row
/// and with many; 300 and 64 weight rows; 65 and 130 rows on one expert; every src1 layout;
/// duplicated ids; 1 to 3 threads.
#[test]
fn generic_path_blocks() {
    let runs = [
        (8, 2, 1, 300, Src1Layout::Broadcast, Routing::Uniform, 2),
        (8, 2, 5, 300, Src1Layout::PerSlot, Routing::Uniform, 1),
        (2, 2, 65, 64, Src1Layout::Broadcast, Routing::Uniform, 2),
        (2, 2, 130, 300, Src1Layout::PerSlot, Routing::Uniform, 3),
        (8, 2, 600, 300, Src1Layout::Broadcast, Routing::Uniform, 2),
        (512, 10, 37, 64, Src1Layout::Permuted, Routing::Skewed, 2),
        (8, 2, 100, 300, Src1Layout::Padded, Routing::Skewed, 2),
        (8, 4, 100, 64, Src1Layout::PerSlot, Routing::Duplicated, 2),
        (
            512,
            10,
            64,
            64,
            Src1Layout::Broadcast,
            Routing::Duplicated,
            3,
        ),
    ];
    for ty in GENERIC_TYPES {
        for (i, &(n_expert, n_used, n_tokens, m, layout, routing, threads)) in
            runs.iter().enumerate()
        {
            let case = Case {
                ty,
                shape: Shape {
                    k: K,
                    m,
                    n_expert,
                    n_used,
                    n_tokens,
                },
                layout,
                routing,
                threads,
                seed: 700 + i as u64,
            };
            let (err, _) = case.run_in(BufferType::cpu(), false);
            let name = case.name();
            eprintln!("{name}: NMSE {err:.3e}");
            assert!(
                err < MATMUL_NMSE_THRESHOLD,
                "{name}: NMSE {err:.3e} above {MATMUL_NMSE_THRESHOLD:e}"
            );
        }
    }
}

/// Weight types of the device test: F16 and the quantized types the Qwen3-Next and Mixtral
/// GGUFs use (every one has a Vulkan shader).
const DEVICE_TYPES: [TensorType; 6] = [
    TensorType::F16,
    TensorType::Q4_0,
    TensorType::Q8_0,
    TensorType::Q4_K,
    TensorType::Q6_K,
    TensorType::IQ4_NL,
];

/// Every layout of src1 (contiguous, broadcast, permuted, padded views) on every device, for
/// one decode token and a short prompt with repeated experts, with the tensors in the device's
/// buffer type: each other device must match the reference and the CPU at 5e-4. Vulkan
/// supports all of these cases; a rejection fails the test.
#[test]
fn every_device() {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    let layouts = [
        Src1Layout::Broadcast,
        Src1Layout::PerSlot,
        Src1Layout::Permuted,
        Src1Layout::Padded,
    ];
    let mut seed = 500;
    for ty in DEVICE_TYPES {
        for layout in layouts {
            for (n_tokens, routing) in [
                (1, Routing::Uniform),
                (9, Routing::Uniform),
                (9, Routing::Duplicated),
            ] {
                seed += 1;
                let k_quant = [TensorType::Q4_K, TensorType::Q6_K].contains(&ty);
                let strided = matches!(layout, Src1Layout::Permuted | Src1Layout::Padded);
                if k_quant && strided && n_tokens > 1 {
                    // Mesa's lavapipe spends more than ten CPU minutes compiling the matrix-matrix
                    // pipeline Vulkan picks for these (LLVM's coroutine pass); the layouts are
                    // covered by the other types, the K-quant kernels by the contiguous layouts.
                    continue;
                }
                let shape = Shape {
                    k: K,
                    m: 64,
                    n_expert: 8,
                    n_used: 4,
                    n_tokens,
                };
                let case = Case {
                    ty,
                    shape,
                    layout,
                    routing,
                    threads: 2,
                    seed,
                };
                let name = case.name();
                let inputs =
                    Inputs::random(ty, shape, layout, routing, None, seed).expect("inputs");
                let want = reference(ty, shape, layout, &inputs).expect("reference");
                let run = |device: Device, expect: Expect| {
                    let built = MulMatId::on(device, ty, shape, layout, &inputs, 2);
                    let op = verdict(device, &name, built, expect)?;
                    {
                        let _turn = serial();
                        op.compute().expect("compute");
                    }
                    Some(op.output())
                };
                let cpu = run(Device::cpu(), Expect::Supported).expect("the CPU runs it");
                let err = nmse(&cpu, &want);
                eprintln!("{name} on CPU: NMSE {err:.3e}");
                assert!(
                    err < MATMUL_NMSE_THRESHOLD,
                    "{name} on CPU: NMSE {err:.3e} above {MATMUL_NMSE_THRESHOLD:e}"
                );
                for (&device, tally) in devices.iter().zip(&mut tallies) {
                    let permuted_batch = matches!(layout, Src1Layout::Permuted) && n_tokens > 1;
                    if device.is_cuda() && ty != TensorType::F16 && permuted_batch {
                        // Upstream's CUDA accepts this in supports_op, then its quantized
                        // matmul (mmq.cu) asserts `nb12 % nb11 == 0` and aborts the process.
                        eprintln!("{name} on {device}: not run (upstream CUDA aborts on it)");
                        continue;
                    }
                    let expect = if device.is_vulkan() {
                        Expect::Supported
                    } else {
                        Expect::Unknown
                    };
                    let got = {
                        let _device = exclusive();
                        run(device, expect)
                    };
                    tally.count(&got);
                    let Some(got) = got else { continue };
                    let (err, err_cpu) = (nmse(&got, &want), nmse(&got, &cpu));
                    eprintln!("{name} on {device}: NMSE {err:.3e} (against the CPU {err_cpu:.3e})");
                    let right = err < MATMUL_NMSE_THRESHOLD && err_cpu < MATMUL_NMSE_THRESHOLD;
                    // Upstream's CUDA MUL_MAT_ID goes wrong when one token names an expert in two
                    // of its slots (seen on an H200: F16, NMSE 0.49). Routers never do that (their
                    // top-k ids are distinct), so on CUDA those cases are reported, not asserted.
                    if !right && device.is_cuda() && matches!(routing, Routing::Duplicated) {
                        eprintln!("{name} on {device}: WRONG (upstream CUDA, duplicated ids)");
                        continue;
                    }
                    assert!(
                        right,
                        "{name} on {device}: NMSE {err:.3e}, against the CPU {err_cpu:.3e}, \
                         above {MATMUL_NMSE_THRESHOLD:e}"
                    );
                }
            }
        }
    }
    for (device, t) in devices.iter().zip(&tallies) {
        eprintln!(
            "every_device on {device}: {} cases passed, {} rejected by supports_op",
            t.passed, t.skipped
        );
    }
}

/// The repacked kernels against the plain CPU path on the same inputs, for every type this
/// build repacks: their integer block sums are exact and their activations are quantized with
/// the same arithmetic, so the two may differ only by the order of the float sums (NMSE about
/// 1e-13 here). A wrong block, a misread interleave or an activation quantizer that rounds
/// differently (the generic four-row Q8_0 one did: 2.9e-9) lands far above the bound.
#[test]
fn repacked_matches_the_plain_cpu_path() {
    const MAX_NMSE: f64 = 1e-11;
    let (k, m) = (2048, 64);
    let types = repacked_types(k, m).expect("probe the repack buffer");
    let repack = BufferType::cpu_repack().expect("this build has a CPU_REPACK buffer type");
    for ty in types {
        for (i, (n_tokens, layout)) in [
            (1, Src1Layout::Broadcast),
            (4, Src1Layout::PerSlot),
            (7, Src1Layout::Permuted),
            (64, Src1Layout::Broadcast),
            (64, Src1Layout::Padded),
        ]
        .into_iter()
        .enumerate()
        {
            let shape = Shape {
                k,
                m,
                n_expert: 8,
                n_used: 2,
                n_tokens,
            };
            let inputs = Inputs::random(ty, shape, layout, Routing::Uniform, None, 1100 + i as u64)
                .expect("inputs");
            let outputs: Vec<Vec<f32>> = [(repack, true), (BufferType::cpu(), false)]
                .into_iter()
                .map(|(buffer, repacked)| {
                    let op = MulMatId::new(ty, shape, layout, &inputs, buffer, 2)
                        .expect("build the graph");
                    assert_eq!(
                        op.weight_repacked(),
                        repacked,
                        "{}: weights in the wrong path",
                        ty.name()
                    );
                    let _turn = serial();
                    op.compute().expect("compute");
                    op.output()
                })
                .collect();
            let err = nmse(&outputs[0], &outputs[1]);
            eprintln!(
                "{} {n_tokens} tokens, {layout:?} src1: repacked vs plain NMSE {err:.3e}",
                ty.name()
            );
            assert!(
                err < MAX_NMSE,
                "{} {n_tokens} tokens, {layout:?} src1: repacked vs plain NMSE {err:.3e} above {MAX_NMSE:e}",
                ty.name()
            );
        }
    }
}
