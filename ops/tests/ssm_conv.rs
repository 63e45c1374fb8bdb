//! `SSM_CONV` on every device against an f64 reference at upstream's NMSE 1e-7: one decode
//! token, Qwen3-Next-80B-A3B's prompt shape (8192 channels, 512 tokens), a range of channels of
//! a wider tensor (rows at an offset, sequences strided), a range of sequences, and thread counts
//! that split the channels in the middle of the CPU kernel's 16-channel blocks (patch 0020).
//! Outside the view the base holds NaN, so a kernel that reads past a row or window fails.
//!
//! Run in both variants: `cargo test -p llamacpp-ops --test ssm_conv` and the same with
//! `LLAMACPP_SYS_PATCHES=none`; with `--features vulkan` for Vulkan.

use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};
use llamacpp_ops::ssm_conv::{Shape, SsmConv, View, random_inputs, reference};
use llamacpp_ops::{Device, NMSE_THRESHOLD, nmse};

struct Case {
    name: &'static str,
    shape: Shape,
    view: View,
    threads: usize,
}

fn case(
    name: &'static str,
    shape: Shape,
    base: [usize; 4],
    start: [usize; 4],
    threads: usize,
) -> Case {
    Case {
        name,
        shape,
        view: View {
            base,
            ne: shape.input(),
            start,
            perm: [0, 1, 2, 3],
        },
        threads,
    }
}

fn cases() -> Vec<Case> {
    let shape = |d_conv, d_inner, n_t, n_s| Shape {
        d_conv,
        d_inner,
        n_t,
        n_s,
    };
    let whole = |s: Shape| s.input();
    vec![
        {
            let s = shape(4, 100, 1, 1);
            case("one decode token", s, whole(s), [0; 4], 2)
        },
        {
            let s = shape(4, 8192, 512, 1);
            case("Qwen3-Next prompt", s, whole(s), [0; 4], 2)
        },
        {
            let s = shape(4, 8192, 7, 2);
            case("two sequences, three threads", s, whole(s), [0; 4], 3)
        },
        {
            // channels 40..277 of a 300-channel tensor: rows at an offset, sequences strided
            let s = shape(4, 237, 33, 3);
            case(
                "channels of a wider tensor",
                s,
                [36, 300, 3, 1],
                [0, 40, 0, 0],
                2,
            )
        },
        {
            // sequences 1..4 of 5, three taps (lfm2's kernel), an odd split over 3 threads
            let s = shape(3, 70, 20, 3);
            case(
                "sequences of a larger batch",
                s,
                [22, 70, 5, 1],
                [0, 0, 1, 0],
                3,
            )
        },
    ]
}

#[test]
fn ssm_conv_matches_the_f64_reference_on_every_device() {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    for (i, c) in cases().into_iter().enumerate() {
        let label = format!("{} {:?} {:?}", c.name, c.shape, c.view);
        let (base, weights) = random_inputs(&c.shape, &c.view, 500 + i as u64);
        let want = reference(&c.shape, &c.view, &base, &weights);

        let cpu = SsmConv::on(Device::cpu(), &c.shape, &c.view, &base, &weights, c.threads)
            .expect("build on the CPU");
        {
            let _turn = serial();
            cpu.compute().expect("compute on the CPU");
        }
        let cpu_out = cpu.output();
        assert_eq!(
            cpu.input_contiguous(),
            c.name != "channels of a wider tensor",
            "{label}"
        );
        let err = nmse(&cpu_out, &want);
        assert!(
            err < NMSE_THRESHOLD,
            "{label} on the CPU: NMSE {err:.3e} above {NMSE_THRESHOLD:e}"
        );

        for (d, device) in devices.iter().enumerate() {
            let _turn = exclusive();
            let built = SsmConv::on(*device, &c.shape, &c.view, &base, &weights, 1);
            let Some(run) = verdict(*device, &label, built, Expect::Unknown) else {
                tallies[d].skipped += 1;
                continue;
            };
            run.compute().expect("compute on the device");
            let got = run.output();
            let err = nmse(&got, &want);
            assert!(
                err < NMSE_THRESHOLD,
                "{label} on {device}: NMSE {err:.3e} against the reference"
            );
            tallies[d].passed += 1;
        }
    }
    for (device, tally) in devices.iter().zip(&tallies) {
        eprintln!(
            "{device}: {} cases passed, {} rejected",
            tally.passed, tally.skipped
        );
    }
}

/// The reference is not trivially satisfied: the window one token later, or another channel's
/// kernel row, gives a result far from it.
#[test]
fn reference_tells_the_window_and_the_channel() {
    let shape = Shape {
        d_conv: 4,
        d_inner: 32,
        n_t: 9,
        n_s: 1,
    };
    let view = View::contiguous(shape.input());
    let (base, weights) = random_inputs(&shape, &view, 9);
    let want = reference(&shape, &view, &base, &weights);
    // one token later: the input shifted left by one column (each row's last value repeated)
    let ncs = shape.input()[0];
    let shifted: Vec<f32> = (0..base.len())
        .map(|i| base[if i % ncs + 1 < ncs { i + 1 } else { i }])
        .collect();
    assert!(nmse(&reference(&shape, &view, &shifted, &weights), &want) > 0.1);
    // the kernel rows of channels c and c + 1 swapped
    let mut swapped = weights.clone();
    for c in (0..shape.d_inner).step_by(2) {
        for k in 0..shape.d_conv {
            swapped.swap(c * shape.d_conv + k, (c + 1) * shape.d_conv + k);
        }
    }
    assert!(nmse(&reference(&shape, &view, &base, &swapped), &want) > 0.1);
}

/// A permuted input or one with a gap inside its rows is refused with an error (ggml's CPU
/// kernel would abort the process).
#[test]
fn inputs_without_packed_rows_are_errors_not_aborts() {
    let shape = Shape {
        d_conv: 4,
        d_inner: 8,
        n_t: 5,
        n_s: 1,
    };
    let padded = View {
        base: [10, 8, 1, 1],
        ne: shape.input(),
        start: [0; 4],
        perm: [0, 1, 2, 3],
    };
    let (base, weights) = random_inputs(&shape, &padded, 1);
    let built = SsmConv::on(Device::cpu(), &shape, &padded, &base, &weights, 1);
    assert!(matches!(built, Err(llamacpp_ops::Error::Unsupported(_))));
    let permuted = View {
        base: [8, 8, 1, 1],
        ne: [8, 8, 1, 1],
        start: [0; 4],
        perm: [1, 0, 2, 3],
    };
    let (base, weights) = random_inputs(&shape, &permuted, 2);
    let built = SsmConv::on(Device::cpu(), &shape, &permuted, &base, &weights, 1);
    assert!(matches!(built, Err(llamacpp_ops::Error::Unsupported(_))));
}
