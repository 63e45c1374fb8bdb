//! `SUM_ROWS` on the CPU backend against Rust references: the NMSE against an f64 sum
//! (upstream's 1e-7), and bit-exactness: rows whose elements are adjacent go through
//! upstream's kernel, which sums in double in index order; strided rows (dim 0 of a permuted
//! view, as in the MoE expert sum) must equal the f32 sum in index order, i.e. the chain of
//! `ADD` nodes the graph used before (checked against that rust sum and, where the source's
//! dim 1 is contiguous, against the chain of views and `ADD` nodes computed by ggml).
//!
//! Every other device of the build (Vulkan with `--features vulkan`) runs the same cases and
//! must match the reference and the CPU at 1e-7. Vulkan's `supports_op` takes rows whose
//! elements are adjacent only: it must reject the strided-dim-0 cases (the graph then keeps
//! `SUM_ROWS` on the CPU) and run the others.
//!
//! Run in both variants: `cargo test -p llamacpp-ops` (patched) and
//! `LLAMACPP_SYS_PATCHES=none cargo test -p llamacpp-ops` (upstream). Upstream's kernel asserts that
//! dim 0 is contiguous (a process abort), so on upstream the strided-dim-0 cases are skipped,
//! each with a line saying so.

use llamacpp_ops::harness::{Expect, accelerators, exclusive, serial, verdict};
use llamacpp_ops::sum_rows::{Method, SumRows, View, random_base, reference, sequential_f32};
use llamacpp_ops::{NMSE_THRESHOLD, capability, nmse};
use llamacpp_sys::build_info;

/// Whether this build's CPU kernel takes a strided dim 0 (patch 0004; upstream aborts).
fn strided_rows_supported() -> bool {
    capability::has(capability::SUM_ROWS_STRIDED_DIM0)
}

/// Runs `view` with 1..=4 threads and checks every result. Returns whether it ran.
fn check(name: &str, view: View, seed: u64) -> bool {
    let base = random_base(&view, seed);
    let want = reference(&view, &base);
    let chain = sequential_f32(&view, &base);
    let mut ran = false;
    let mut cpu_out = None;
    for threads in 1..=4 {
        let op = SumRows::new(&view, &base, threads).expect("build the graph");
        if !op.rows_contiguous() && !strided_rows_supported() {
            eprintln!(
                "{name}: skipped on {} (its CPU kernel asserts nb[0] == sizeof(float))",
                build_info::VARIANT
            );
            check_accelerators(name, &view, &base, &want, None);
            return false;
        }
        {
            let _turn = serial();
            op.compute().expect("compute");
        }
        let got = op.output();
        let err = nmse(&got, &want);
        assert!(
            err < NMSE_THRESHOLD,
            "{name}, {threads} threads: NMSE {err:.3e} above {NMSE_THRESHOLD:e}"
        );
        let exact = if op.rows_contiguous() { &want } else { &chain };
        let differ = got
            .iter()
            .zip(exact)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{name}, {threads} threads: {differ} of {} sums differ from the {} sum in index order",
            got.len(),
            if op.rows_contiguous() { "f64" } else { "f32" }
        );
        if !op.rows_contiguous() && view.layout().strides[1] == 1 {
            // the graph this op replaces in build_moe_ffn, computed by ggml's ADD kernel
            let chain = SumRows::with_method(&view, &base, threads, Method::AddChain)
                .expect("build the ADD chain");
            {
                let _turn = serial();
                chain.compute().expect("compute the ADD chain");
            }
            let differ = got
                .iter()
                .zip(chain.output())
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "{name}, {threads} threads: {differ} sums differ from ggml's ADD chain"
            );
        }
        if threads == 1 {
            eprintln!(
                "{name}: NMSE {err:.3e}, bit-identical to the {} sum in index order",
                if op.rows_contiguous() { "f64" } else { "f32" }
            );
            cpu_out = Some(got);
        }
        ran = true;
    }
    check_accelerators(name, &view, &base, &want, cpu_out.as_deref());
    ran
}

/// Runs `view` on every device other than the CPU: Vulkan must reject a strided dim 0 and
/// compute the rest within 1e-7 of the reference and of the CPU (`cpu`, when it ran).
fn check_accelerators(name: &str, view: &View, base: &[f32], want: &[f32], cpu: Option<&[f32]>) {
    let dim0_contiguous = view.layout().strides[0] == 1;
    for device in accelerators() {
        let expect = match (device.is_vulkan(), dim0_contiguous) {
            (false, _) => Expect::Unknown,
            (true, true) => Expect::Supported,
            (true, false) => Expect::Unsupported,
        };
        let _device = exclusive();
        let built = SumRows::on(device, view, base, 1, Method::SumRows);
        let Some(op) = verdict(device, &name, built, expect) else {
            continue;
        };
        {
            let _turn = serial();
            op.compute().expect("compute");
        }
        let got = op.output();
        let err = nmse(&got, want);
        let err_cpu = cpu.map_or(0.0, |c| nmse(&got, c));
        assert!(
            err < NMSE_THRESHOLD && err_cpu < NMSE_THRESHOLD,
            "{name} on {device}: NMSE {err:.3e} against the reference, {err_cpu:.3e} against \
             the CPU, above {NMSE_THRESHOLD:e}"
        );
        eprintln!("{name} on {device}: NMSE {err:.3e} (against the CPU {err_cpu:.3e})");
    }
}

/// The references themselves: the data is spread enough that the f32 chain and the f64
/// sum round differently, so the bit-exactness checks can tell the two kernels apart.
#[test]
fn references_differ_in_rounding() {
    let view = View::moe(256, 16, 10, 4);
    let base = random_base(&view, 1);
    let f64_sum = reference(&view, &base);
    let chain = sequential_f32(&view, &base);
    let differ = f64_sum
        .iter()
        .zip(&chain)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert!(
        differ > chain.len() / 10,
        "only {differ} of {} sums round differently",
        chain.len()
    );
    assert!(nmse(&chain, &f64_sum) < NMSE_THRESHOLD);
}

/// Contiguous sources (upstream's fast path, unchanged by the patch).
#[test]
fn contiguous() {
    for (i, ne) in [[64, 7, 3, 2], [1, 5, 1, 1], [2048, 3, 1, 1], [10, 1, 1, 1]]
        .into_iter()
        .enumerate()
    {
        assert!(check(
            &format!("contiguous {ne:?}"),
            View::contiguous(ne),
            10 + i as u64
        ));
    }
}

/// Rows whose elements are adjacent but whose rows are not: padded rows and views at an
/// offset inside a larger base (upstream handles both).
#[test]
fn strided_and_offset_rows() {
    let cases = [
        (
            "padded rows",
            View {
                base: [80, 6, 4, 1],
                ne: [64, 6, 4, 1],
                start: [0; 4],
                perm: [0, 1, 2, 3],
            },
        ),
        (
            "offset box",
            View {
                base: [70, 9, 5, 2],
                ne: [64, 8, 3, 2],
                start: [3, 1, 2, 0],
                perm: [0, 1, 2, 3],
            },
        ),
        (
            "rows of dim 2 (dims 1 and 2 swapped)",
            View {
                base: [33, 4, 6, 1],
                ne: [33, 4, 6, 1],
                start: [0; 4],
                perm: [0, 2, 1, 3],
            },
        ),
    ];
    for (i, (name, view)) in cases.into_iter().enumerate() {
        assert!(check(name, view, 20 + i as u64));
    }
}

/// Dim 0 strided: the MoE expert sum (decode, prompt, the first `n_used` of more experts as
/// during warmup), permuted views of padded and offset boxes (dim 1 contiguous or not), and
/// a full transposition where no dimension of the source is contiguous.
#[test]
fn strided_dim0() {
    let cases = [
        ("moe 2048x10, 1 token", View::moe(2048, 10, 10, 1)),
        ("moe 2048x10, 37 tokens", View::moe(2048, 10, 10, 37)),
        (
            "moe 256x8 of 16 experts, 5 tokens",
            View::moe(256, 16, 8, 5),
        ),
        ("moe 64x2, 3 tokens", View::moe(64, 2, 2, 3)),
        (
            "moe 3x4, 2 tokens (fewer outputs than threads)",
            View::moe(3, 4, 4, 2),
        ),
        (
            "permuted padded box at an offset",
            View {
                base: [40, 12, 3, 2],
                ne: [32, 10, 2, 2],
                start: [5, 1, 1, 0],
                perm: [1, 0, 2, 3],
            },
        ),
        (
            "transposed (2, 0, 1, 3)",
            View {
                base: [6, 7, 9, 1],
                ne: [6, 7, 9, 1],
                start: [0; 4],
                perm: [2, 0, 1, 3],
            },
        ),
        (
            "dim 3 summed, offset",
            View {
                base: [5, 4, 3, 7],
                ne: [4, 4, 2, 6],
                start: [1, 0, 1, 1],
                perm: [3, 1, 2, 0],
            },
        ),
    ];
    let mut ran = 0;
    for (i, (name, view)) in cases.into_iter().enumerate() {
        ran += usize::from(check(name, view, 30 + i as u64));
    }
    if strided_rows_supported() {
        assert_eq!(ran, 8, "every strided case ran");
    }
}
