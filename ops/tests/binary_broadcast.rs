//! `ADD`, `SUB`, `MUL` and `DIV` with one `src1` value per row of `src0` (patch 0021's path) on
//! every device. Each output is one IEEE operation on two f32 values, so the CPU must match the
//! f32 reference bit for bit; other devices within upstream's NMSE 1e-7. Cases: the MoE expert
//! weighting, the shared-expert gate read from a column of a wider tensor (strided `src1` rows),
//! a sub-box of `src0` at an offset with `src1` repeated over dims 2 and 3, and a permuted `src0`
//! (rows strided, dim 0 adjacent). Outside the views the bases hold NaN, so a kernel that reads
//! the wrong element fails.
//!
//! Run in both variants: `cargo test -p llamacpp-ops --test binary_broadcast` and the same with
//! `LLAMACPP_SYS_PATCHES=none`; with `--features vulkan` for Vulkan.

use llamacpp_ops::binary::{Binary, BinaryOp, Src1, View, random_inputs, reference};
use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};
use llamacpp_ops::{Device, NMSE_THRESHOLD, nmse};

fn cases() -> Vec<(&'static str, View, Src1, usize)> {
    let view = |base: [usize; 4], ne: [usize; 4], start: [usize; 4], perm: [usize; 4]| View {
        base,
        ne,
        start,
        perm,
    };
    let src1 = |ne: [usize; 4], width: usize, column: usize| Src1 { ne, width, column };
    vec![
        (
            "MoE expert weights",
            View::contiguous([300, 10, 7, 1]),
            src1([1, 10, 7, 1], 1, 0),
            2,
        ),
        (
            "shared-expert gate from a wider tensor",
            View::contiguous([256, 9, 1, 1]),
            src1([1, 9, 1, 1], 4, 2),
            3,
        ),
        (
            "sub-box at an offset, src1 repeated",
            view([40, 9, 6, 3], [33, 5, 4, 2], [3, 2, 1, 1], [0, 1, 2, 3]),
            src1([1, 5, 2, 1], 1, 0),
            2,
        ),
        (
            "permuted rows",
            view([20, 6, 5, 1], [20, 6, 5, 1], [0; 4], [0, 2, 1, 3]),
            src1([1, 5, 3, 1], 3, 1),
            3,
        ),
    ]
}

#[test]
fn per_row_broadcast_matches_the_f32_reference_on_every_device() {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    let mut cpu_runs = 0;
    for (c, (name, view, src1, threads)) in cases().into_iter().enumerate() {
        for (o, op) in BinaryOp::ALL.into_iter().enumerate() {
            let case = format!("{op:?} on {name} {view:?} {src1:?}");
            let (base0, base1) = random_inputs(&view, &src1, 100 + 10 * c as u64 + o as u64);
            let want = reference(op, &view, &src1, &base0, &base1);
            assert!(want.iter().all(|v| v.is_finite()), "{case}: reference");

            let cpu = Binary::on(Device::cpu(), op, &view, &src1, (&base0, &base1), threads)
                .expect("build on the CPU");
            {
                let _turn = serial();
                cpu.compute().expect("compute on the CPU");
            }
            let got = cpu.output();
            let differing = got
                .iter()
                .zip(&want)
                .filter(|(g, w)| g.to_bits() != w.to_bits())
                .count();
            assert_eq!(
                differing, 0,
                "{case} on the CPU: values differ from the f32 op"
            );
            cpu_runs += 1;

            for (d, device) in devices.iter().enumerate() {
                let _turn = exclusive();
                let built = Binary::on(*device, op, &view, &src1, (&base0, &base1), 1);
                let Some(run) = verdict(*device, &case, built, Expect::Unknown) else {
                    tallies[d].skipped += 1;
                    continue;
                };
                run.compute().expect("compute on the device");
                let err = nmse(&run.output(), &want);
                assert!(
                    err < NMSE_THRESHOLD,
                    "{case} on {device}: NMSE {err:.3e} against the reference"
                );
                tallies[d].passed += 1;
            }
        }
    }
    assert_eq!(cpu_runs, cases().len() * BinaryOp::ALL.len());
    for (device, tally) in devices.iter().zip(&tallies) {
        eprintln!(
            "{device}: {} cases passed, {} rejected",
            tally.passed, tally.skipped
        );
    }
}

/// The reference is not trivially satisfied: the next row's `src1` value gives other results.
#[test]
fn reference_tells_the_rows_apart() {
    let view = View::contiguous([16, 8, 1, 1]);
    let src1 = Src1 {
        ne: [1, 8, 1, 1],
        width: 1,
        column: 0,
    };
    let (base0, base1) = random_inputs(&view, &src1, 5);
    let want = reference(BinaryOp::Mul, &view, &src1, &base0, &base1);
    let mut rotated = base1.clone();
    rotated.rotate_left(1);
    let got = reference(BinaryOp::Mul, &view, &src1, &base0, &rotated);
    assert!(nmse(&got, &want) > 1e-3, "NMSE {}", nmse(&got, &want));
}

/// A `src1` that does not broadcast, or a `src0` whose dim 0 is strided, is an error (ggml
/// would abort the process).
#[test]
fn shapes_ggml_would_abort_on_are_errors() {
    let view = View::contiguous([16, 6, 1, 1]);
    let src1 = Src1 {
        ne: [1, 4, 1, 1],
        width: 1,
        column: 0,
    };
    let (base0, base1) = random_inputs(&view, &src1, 1);
    let built = Binary::on(
        Device::cpu(),
        BinaryOp::Mul,
        &view,
        &src1,
        (&base0, &base1),
        1,
    );
    assert!(matches!(built, Err(llamacpp_ops::Error::Shape(_))));
    let permuted = View {
        base: [16, 6, 1, 1],
        ne: [16, 6, 1, 1],
        start: [0; 4],
        perm: [1, 0, 2, 3],
    };
    let src1 = Src1 {
        ne: [1, 16, 1, 1],
        width: 1,
        column: 0,
    };
    let (base0, base1) = random_inputs(&permuted, &src1, 2);
    let built = Binary::on(
        Device::cpu(),
        BinaryOp::Mul,
        &permuted,
        &src1,
        (&base0, &base1),
        1,
    );
    assert!(matches!(built, Err(llamacpp_ops::Error::Unsupported(_))));
}
