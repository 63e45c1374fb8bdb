//! Unary ops (`GGML_OP_UNARY`) on views, on every device, against an f64 reference at upstream's
//! NMSE 1e-7: a contiguous tensor, Qwen3-Next's attention gate (the second half of each
//! `2 * head_dim` row of the q projection), its beta (the first 2 of every 4 values), a sub-box at
//! an offset in every dimension. Outside the view the base holds NaN, so a kernel that reads past a
//! row fails. (`ggml_unary` itself asserts that each row's elements are adjacent: permuted views
//! are not unary inputs, and [`Unary::on`] refuses them with an error.)
//!
//! Vulkan's unary shader reads any strides and must run every case.
//! CUDA must run every case where the build has the capability `cuda-unary-strided-views`
//! (patch 0011, on the patched build) and keeps upstream's answer (contiguous only) elsewhere. Graph patch 0012 relies on exactly this: it drops its
//! copies before a sigmoid only where every device holding layers accepts such a view.
//!
//! Run in both variants: `cargo test -p llamacpp-ops --test unary_views` and the same with
//! `LLAMACPP_SYS_PATCHES=none`; with `--features vulkan` for Vulkan.

use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};
use llamacpp_ops::sum_rows::View;
use llamacpp_ops::unary::{Unary, UnaryOp, random_base, reference};
use llamacpp_ops::{Device, NMSE_THRESHOLD, capability, nmse};

/// The layouts, by name.
fn views() -> Vec<(&'static str, View)> {
    let boxed = |base: [usize; 4], ne: [usize; 4], start: [usize; 4], perm: [usize; 4]| View {
        base,
        ne,
        start,
        perm,
    };
    vec![
        ("contiguous", View::contiguous([64, 4, 3, 2])),
        // q projection [2 * 256, 16 heads, 5 tokens]: the gate is the second half of each row
        (
            "attention gate",
            boxed(
                [512, 16, 5, 1],
                [256, 16, 5, 1],
                [256, 0, 0, 0],
                [0, 1, 2, 3],
            ),
        ),
        // ba projection [4, 16 k-heads, 7 tokens, 2 seqs]: beta is the first 2 of each row
        (
            "beta",
            boxed([4, 16, 7, 2], [2, 16, 7, 2], [0, 0, 0, 0], [0, 1, 2, 3]),
        ),
        (
            "sub-box at an offset",
            boxed([40, 9, 6, 3], [33, 5, 4, 2], [3, 2, 1, 1], [0, 1, 2, 3]),
        ),
    ]
}

/// What `device` must answer for a view that is contiguous as a whole or not.
fn expect(device: &Device, contiguous: bool) -> Expect {
    if device.is_vulkan() {
        Expect::Supported
    } else if device.is_cuda() {
        if contiguous || capability::has(capability::CUDA_UNARY_STRIDED_VIEWS) {
            Expect::Supported
        } else {
            Expect::Unsupported
        }
    } else {
        Expect::Unknown
    }
}

#[test]
fn unary_ops_on_views_match_the_f64_reference_on_every_device() {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    let mut cpu_runs = 0;
    for (v, (name, view)) in views().into_iter().enumerate() {
        for (o, op) in UnaryOp::ALL.into_iter().enumerate() {
            let case = format!("{op:?} on {name} {view:?}");
            let base = random_base(&view, 1000 + 10 * v as u64 + o as u64);
            let want = reference(op, &view, &base);

            let cpu = Unary::on(Device::cpu(), op, &view, &base, 2).expect("build on the CPU");
            {
                let _turn = serial();
                cpu.compute().expect("compute on the CPU");
            }
            let cpu_out = cpu.output();
            let contiguous = cpu.input_contiguous();
            assert_eq!(contiguous, name == "contiguous", "{case}");
            let err = nmse(&cpu_out, &want);
            assert!(
                err < NMSE_THRESHOLD,
                "{case} on the CPU: NMSE {err:.3e} above {NMSE_THRESHOLD:e}"
            );
            cpu_runs += 1;

            for (d, device) in devices.iter().enumerate() {
                let _turn = exclusive();
                let built = Unary::on(*device, op, &view, &base, 1);
                let Some(run) = verdict(*device, &case, built, expect(device, contiguous)) else {
                    tallies[d].skipped += 1;
                    continue;
                };
                run.compute().expect("compute on the device");
                let got = run.output();
                let err = nmse(&got, &want);
                assert!(
                    err < NMSE_THRESHOLD,
                    "{case} on {device}: NMSE {err:.3e} against the reference"
                );
                let err = nmse(&got, &cpu_out);
                assert!(
                    err < NMSE_THRESHOLD,
                    "{case} on {device}: NMSE {err:.3e} against the CPU"
                );
                tallies[d].passed += 1;
            }
        }
    }
    assert_eq!(cpu_runs, views().len() * UnaryOp::ALL.len());
    for (device, tally) in devices.iter().zip(&tallies) {
        eprintln!(
            "{device}: {} cases passed, {} rejected",
            tally.passed, tally.skipped
        );
    }
}

/// The reference is not trivially satisfied: a sigmoid reading the row next to the gate (the
/// query half of the projection) is far from it.
#[test]
fn reference_tells_the_gate_from_its_neighbour() {
    let gate = View {
        base: [512, 16, 5, 1],
        ne: [256, 16, 5, 1],
        start: [256, 0, 0, 0],
        perm: [0, 1, 2, 3],
    };
    let query = View {
        start: [0, 0, 0, 0],
        ..gate
    };
    let mut base = random_base(&gate, 7);
    let query_vals = random_base(&query, 8);
    for (b, q) in base.iter_mut().zip(&query_vals) {
        if b.is_nan() {
            *b = *q;
        }
    }
    let err = nmse(
        &reference(UnaryOp::Sigmoid, &query, &base),
        &reference(UnaryOp::Sigmoid, &gate, &base),
    );
    assert!(err > 0.1, "NMSE {err}");
}

/// A view whose dim 0 is strided is refused with an error (ggml_unary would abort the process).
#[test]
fn a_permuted_input_is_an_error_not_an_abort() {
    let view = View {
        base: [24, 10, 3, 2],
        ne: [24, 10, 3, 2],
        start: [0; 4],
        perm: [1, 0, 2, 3],
    };
    let base = random_base(&view, 3);
    let built = Unary::on(Device::cpu(), UnaryOp::Sigmoid, &view, &base, 1);
    assert!(matches!(built, Err(llamacpp_ops::Error::Unsupported(_))));
}
