//! `CONCAT` on every device, compared bit for bit with the element-by-element reference:
//! Qwen3-Next's conv input (the conv state joined with a transposed view of the new tokens, the
//! case patch 0022 reads in blocks of rows on the CPU), at the 80B-A3B's 8192 channels and 512
//! tokens, with several sequences, one token, a transposed view at an offset inside a wider
//! tensor, F16; and concats along dims 1, 2 and 3 of permuted and strided views. Thread counts
//! split the rows in the middle of the CPU's 16-row blocks. Outside the views the bases hold a
//! NaN that no generated value equals, so a kernel reading past a view fails.
//!
//! Run in both variants: `cargo test -p llamacpp-ops --test concat` and the same with
//! `LLAMACPP_SYS_PATCHES=none`; with `--features vulkan` (or `cuda`) for the GPU backends, which
//! must accept every case.

use llamacpp_ops::Device;
use llamacpp_ops::concat::{Concat, Elem, View, random_base, reference};
use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};

struct Case {
    name: &'static str,
    ty: Elem,
    dim: usize,
    views: [View; 2],
    threads: usize,
}

fn whole(ne: [usize; 4]) -> View {
    View::contiguous(ne)
}

/// The new tokens `[channels, n_t, n_s]` as the conv input reads them: transposed to
/// `[n_t, channels, n_s]`.
fn transposed(channels: usize, n_t: usize, n_s: usize) -> View {
    View {
        base: [channels, n_t, n_s, 1],
        ne: [channels, n_t, n_s, 1],
        start: [0; 4],
        perm: [1, 0, 2, 3],
    }
}

fn cases() -> Vec<Case> {
    let case = |name, ty, dim, views, threads| Case {
        name,
        ty,
        dim,
        views,
        threads,
    };
    vec![
        case(
            "Qwen3-Next conv input, 512 tokens",
            Elem::F32,
            0,
            [whole([3, 8192, 1, 1]), transposed(8192, 512, 1)],
            2,
        ),
        case(
            "conv input, two sequences of 7 tokens, three threads",
            Elem::F32,
            0,
            [whole([3, 8192, 2, 1]), transposed(8192, 7, 2)],
            3,
        ),
        case(
            "conv input, one token of two sequences",
            Elem::F32,
            0,
            [whole([3, 8192, 2, 1]), transposed(8192, 1, 2)],
            2,
        ),
        case(
            // channels 40..277 of 300, rows of the state padded and at an offset, 237 rows over 3
            // threads (79 each: inside a 16-row block)
            "conv input from a wider tensor, padded state rows",
            Elem::F32,
            0,
            [
                View {
                    base: [5, 237, 1, 1],
                    ne: [3, 237, 1, 1],
                    start: [1, 0, 0, 0],
                    perm: [0, 1, 2, 3],
                },
                View {
                    base: [300, 33, 1, 1],
                    ne: [237, 33, 1, 1],
                    start: [40, 0, 0, 0],
                    perm: [1, 0, 2, 3],
                },
            ],
            3,
        ),
        case(
            "F16 conv input, three sequences of 20 tokens",
            Elem::F16,
            0,
            [whole([3, 1000, 3, 1]), transposed(1000, 20, 3)],
            3,
        ),
        case(
            "dim 0, both contiguous (the MTP layer's join)",
            Elem::F32,
            0,
            [whole([64, 5, 1, 1]), whole([48, 5, 1, 1])],
            2,
        ),
        case(
            "dim 1, permuted src0",
            Elem::F32,
            1,
            [
                View {
                    base: [6, 10, 3, 1],
                    ne: [6, 10, 3, 1],
                    start: [0; 4],
                    perm: [1, 0, 2, 3],
                },
                whole([10, 4, 3, 1]),
            ],
            2,
        ),
        case(
            "dim 2, F16, a sub-box of src0",
            Elem::F16,
            2,
            [
                View {
                    base: [10, 6, 2, 1],
                    ne: [8, 5, 2, 1],
                    start: [1, 1, 0, 0],
                    perm: [0, 1, 2, 3],
                },
                whole([8, 5, 3, 1]),
            ],
            3,
        ),
        case(
            "dim 3, src1 with dims 1 and 2 swapped",
            Elem::F32,
            3,
            [
                whole([4, 3, 2, 1]),
                View {
                    base: [4, 2, 3, 2],
                    ne: [4, 2, 3, 2],
                    start: [0; 4],
                    perm: [0, 2, 1, 3],
                },
            ],
            2,
        ),
    ]
}

/// What a device is expected to do with these F32/F16 concats: CUDA and Vulkan take every
/// layout (their `supports_op` limits only quantized types).
fn expectation(device: &Device) -> Expect {
    if device.is_cuda() || device.is_vulkan() {
        Expect::Supported
    } else {
        Expect::Unknown
    }
}

#[test]
fn concat_copies_every_element_on_every_device() {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    for (i, c) in cases().into_iter().enumerate() {
        let label = format!("{} ({:?}, dim {}) {:?}", c.name, c.ty, c.dim, c.views);
        let [v0, v1] = &c.views;
        let b0 = random_base(c.ty, v0, 700 + 2 * i as u64);
        let b1 = random_base(c.ty, v1, 701 + 2 * i as u64);
        let want = reference(c.dim, [v0, v1], [&b0, &b1]).expect("reference");

        let cpu = Concat::on(Device::cpu(), c.ty, c.dim, [v0, v1], [&b0, &b1], c.threads)
            .expect("build on the CPU");
        {
            let _turn = serial();
            cpu.compute().expect("compute on the CPU");
        }
        if c.name.contains("conv input") {
            // the transposed source is what the case is about: its dim 1 is the adjacent one
            assert_eq!(cpu.source_strides(1)[1], c.ty.size(), "{label}");
        }
        assert_exact(&cpu.output(), &want, &label, "the CPU");

        for (d, device) in devices.iter().enumerate() {
            let _turn = exclusive();
            let built = Concat::on(*device, c.ty, c.dim, [v0, v1], [&b0, &b1], 1);
            let Some(run) = verdict(*device, &label, built, expectation(device)) else {
                tallies[d].skipped += 1;
                continue;
            };
            run.compute().expect("compute on the device");
            assert_exact(&run.output(), &want, &label, &device.to_string());
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

fn assert_exact(got: &[u32], want: &[u32], label: &str, on: &str) {
    assert_eq!(got.len(), want.len(), "{label} on {on}: output size");
    let wrong = got.iter().zip(want).filter(|(g, w)| g != w).count();
    if let Some(first) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!(
            "{label} on {on}: {wrong} of {} elements differ, the first at {first} \
             ({:#x} for {:#x})",
            want.len(),
            got[first],
            want[first]
        );
    }
}

/// The reference is not trivially satisfied: reading the transposed source as if it were not
/// transposed, or swapping the sources, gives other values; outside-view values never match
/// a generated one.
#[test]
fn reference_tells_the_layouts_apart() {
    let v0 = whole([3, 16, 1, 1]);
    let v1 = transposed(16, 5, 1);
    let b0 = random_base(Elem::F32, &v0, 1);
    let b1 = random_base(Elem::F32, &v1, 2);
    let want = reference(0, [&v0, &v1], [&b0, &b1]).expect("reference");
    let untransposed = View {
        base: [5, 16, 1, 1],
        ne: [5, 16, 1, 1],
        start: [0; 4],
        perm: [0, 1, 2, 3],
    };
    let other = reference(0, [&v0, &untransposed], [&b0, &b1]).expect("reference");
    assert_ne!(want, other);
    let differ = want.iter().zip(&other).filter(|(a, b)| a != b).count();
    assert!(differ > want.len() / 2, "{differ} of {}", want.len());
    // the bases hold no outside value inside the views, and a padded base holds some
    let padded = View {
        base: [5, 16, 1, 1],
        ne: [3, 16, 1, 1],
        start: [1, 0, 0, 0],
        perm: [0, 1, 2, 3],
    };
    let b = random_base(Elem::F32, &padded, 3);
    let inside = reference(0, [&padded, &v1], [&b, &b1]).expect("reference");
    assert!(inside.iter().all(|&x| x & (1 << 30) == 0));
    assert_eq!(b.iter().filter(|&&x| x & (1 << 30) != 0).count(), 2 * 16);
}

/// Sizes that do not agree off the concat's dimension are an error, not a ggml abort.
#[test]
fn mismatched_sizes_are_errors_not_aborts() {
    let v0 = whole([3, 16, 1, 1]);
    let v1 = whole([4, 15, 1, 1]);
    let b0 = random_base(Elem::F32, &v0, 1);
    let b1 = random_base(Elem::F32, &v1, 2);
    let built = Concat::on(Device::cpu(), Elem::F32, 0, [&v0, &v1], [&b0, &b1], 1);
    assert!(matches!(built, Err(llamacpp_ops::Error::Shape(_))));
    let built = Concat::on(Device::cpu(), Elem::F32, 4, [&v0, &v0], [&b0, &b0], 1);
    assert!(matches!(built, Err(llamacpp_ops::Error::Shape(_))));
}
