//! `GATED_DELTA_NET` on every device against an f64 reference, at upstream's NMSE 1e-7.
//!
//! Every other device of the build (Vulkan with `--features vulkan`, CUDA, ...) runs the same
//! cases and must match the reference and the CPU at 1e-7. On the patched build Vulkan
//! implements every form (patch 0013): both broadcasts, the states in the output, in place and
//! aliased, and the q/k L2 norm in the op, and must run every case with a head size of 16, 32,
//! 64 or 128 (and reject the others). Without patch 0013 its `supports_op` must reject the
//! interleaved broadcast (0006), the in-place state (0007) and the q/k norm in the op (0010), so
//! that the graph keeps those forms on the CPU. CUDA implements every form with patch 0014
//! (compile-checked only when it was written): on the patched build a CUDA device must accept
//! and match every case with those head sizes, so that the first run on a GPU checks the
//! kernel. Other devices (Metal, ...) are not required to accept a case, but one they accept
//! must match. The input states read by row id (patch 0041) are a CPU form: Vulkan and CUDA
//! must reject them. (On the upstream build the new forms never reach a device: the CPU lacks them
//! too, and they are skipped.)
//!
//! Run in both variants: `cargo test -p llamacpp-ops` (patched) and
//! `LLAMACPP_SYS_PATCHES=none cargo test -p llamacpp-ops` (upstream). The interleaved q/k broadcast,
//! the in-place state and the q/k L2 norm in the op exist on the patched build only: on upstream
//! those cases are skipped, and each test prints how many it skipped and why.

use llamacpp_ops::gated_delta_net::{
    Bcast, GatedDeltaNet, Inputs, Output, QkNorm, QkvLayout, RowIds, Shape, StateMode,
    cuda_supports_patched_modes, reference, supports_interleaved, supports_qk_l2_norm,
    supports_state_inplace, supports_state_rows, vulkan_supports_patched_modes,
};
use llamacpp_ops::harness::{Expect, Tally, accelerators, exclusive, serial, verdict};
use llamacpp_ops::{Device, Error, NMSE_THRESHOLD, nmse};
use llamacpp_sys::build_info;

#[derive(Clone, Copy, Debug)]
struct Case {
    shape: Shape,
    layout: QkvLayout,
    bcast: Bcast,
    mode: StateMode,
    qk_norm: QkNorm,
    /// One log decay per key (KDA) instead of one per head.
    key_gates: bool,
    threads: usize,
    seed: u64,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl Case {
    /// The case's inputs: unit q/k rows, or rows of other norms when something normalises them.
    fn inputs(&self) -> Inputs {
        let inputs = match self.qk_norm {
            QkNorm::Given => Inputs::random(self.shape, self.seed),
            QkNorm::Graph { .. } | QkNorm::InOp { .. } => {
                Inputs::random_unnormalised(self.shape, self.seed)
            }
        };
        let mut inputs = if self.key_gates {
            inputs.with_key_gates(self.shape, self.seed)
        } else {
            inputs
        };
        if self.mode == StateMode::Rows(RowIds::Shared) {
            // every sequence reads the one row: one input state for all
            let d = self.shape.state_row();
            let first = inputs.state[..d].to_vec();
            for row in inputs.state.chunks_mut(d) {
                row.copy_from_slice(&first);
            }
        }
        inputs
    }

    /// The f64 reference of the case (q and k normalised in f64 first where the case asks).
    fn reference(&self) -> Output {
        let inputs = self.inputs();
        match self.qk_norm.eps() {
            None => reference(self.shape, self.bcast, &inputs),
            Some(eps) => reference(
                self.shape,
                self.bcast,
                &inputs.l2_normalised(self.shape.s_v, eps),
            ),
        }
    }

    /// What Vulkan's or CUDA's `supports_op` must answer: every form when the build has the
    /// backend's patch (0013, 0014), else only the tiled broadcast with the states in the
    /// output and q/k normalised outside the op (or given); in both cases only for the head
    /// sizes both have kernels for.
    fn backend_expect(&self, patched_modes: bool) -> Expect {
        let upstream_form = self.bcast == Bcast::Tiled
            && self.mode == StateMode::Output
            && !matches!(self.qk_norm, QkNorm::InOp { .. });
        // the states read by row ids are a CPU form only (patch 0041)
        let implemented = (upstream_form || patched_modes)
            && !matches!(self.mode, StateMode::Rows(_))
            && [16, 32, 64, 128].contains(&self.shape.s_v);
        if implemented {
            Expect::Supported
        } else {
            Expect::Unsupported
        }
    }

    /// Builds the case on `device`; `None` when this build of ggml lacks what it needs.
    fn build(&self, device: Device, inputs: &Inputs) -> Option<Result<GatedDeltaNet, Error>> {
        match GatedDeltaNet::on(
            device,
            self.shape,
            self.layout,
            self.bcast,
            self.mode,
            self.qk_norm,
            inputs,
            self.threads,
        ) {
            Err(Error::Unsupported(what)) => {
                eprintln!("SKIPPED on {} (no {what}): {self:?}", build_info::VARIANT);
                None
            }
            built => Some(built),
        }
    }

    /// The case computed on the CPU, unchecked; `None` when this build lacks what it needs.
    fn cpu_output(&self) -> Option<Output> {
        let inputs = self.inputs();
        let built = self.build(Device::cpu(), &inputs)?;
        let op = verdict(Device::cpu(), self, built, Expect::Supported).expect("the CPU runs it");
        let _turn = serial();
        op.compute().expect("compute");
        Some(op.output())
    }

    /// Runs the case on the CPU and on every other device and asserts each result; `tallies`
    /// counts, per other device, the cases run and rejected. Returns false when this build
    /// lacks what the case needs.
    fn check(&self, tallies: &mut [Tally]) -> bool {
        let inputs = self.inputs();
        let want = self.reference();
        let Some(built) = self.build(Device::cpu(), &inputs) else {
            return false;
        };
        let op = verdict(Device::cpu(), self, built, Expect::Supported).expect("the CPU runs it");
        let cpu = self.compute(&op, Device::cpu(), &want, None);
        for (device, tally) in accelerators().into_iter().zip(tallies) {
            let expect = if device.is_vulkan() {
                self.backend_expect(vulkan_supports_patched_modes())
            } else if device.is_cuda() {
                self.backend_expect(cuda_supports_patched_modes())
            } else {
                Expect::Unknown
            };
            let _device = exclusive();
            let built = self.build(device, &inputs).expect("the CPU built it");
            let op = verdict(device, self, built, expect);
            tally.count(&op);
            if let Some(op) = op {
                self.compute(&op, device, &want, Some(&cpu));
            }
        }
        true
    }

    /// Computes `op` on `device`, asserts it against the reference `want` (and the CPU's
    /// result, if given) and returns its result.
    fn compute(
        &self,
        op: &GatedDeltaNet,
        device: Device,
        want: &Output,
        cpu: Option<&Output>,
    ) -> Output {
        {
            let _turn = serial();
            op.compute().expect("compute");
        }
        let got = op.output();
        let (e_attn, e_state) = (nmse(&got.attn, &want.attn), nmse(&got.states, &want.states));
        let (c_attn, c_state) = cpu.map_or((0.0, 0.0), |c| {
            (nmse(&got.attn, &c.attn), nmse(&got.states, &c.states))
        });
        eprintln!(
            "{self:?} on {device}: NMSE attn {e_attn:.3e}, states {e_state:.3e} \
             (against the CPU {c_attn:.3e}, {c_state:.3e})"
        );
        assert!(
            [e_attn, e_state, c_attn, c_state]
                .iter()
                .all(|&e| e < NMSE_THRESHOLD),
            "{self:?} on {device}: NMSE attn {e_attn:.3e}, states {e_state:.3e} (against the \
             CPU {c_attn:.3e}, {c_state:.3e}) above {NMSE_THRESHOLD:e}"
        );
        assert_eq!(
            got.clobbered, 0,
            "{self:?} on {device}: cache values outside the state rows changed"
        );
        got
    }
}

/// Runs every case; prints how many were skipped on this build and, per other device, how
/// many each device ran and rejected.
fn run(name: &str, cases: &[Case]) {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    let ran = cases.iter().filter(|c| c.check(&mut tallies)).count();
    let skipped = cases.len() - ran;
    eprintln!(
        "{name}: {ran} cases run, {skipped} skipped on the {} build",
        build_info::VARIANT
    );
    for (device, t) in devices.iter().zip(&tallies) {
        eprintln!(
            "{name} on {device}: {} cases passed, {} rejected by supports_op",
            t.passed, t.skipped
        );
    }
    if build_info::VARIANT == "patched" {
        assert!(
            supports_interleaved()
                && supports_state_inplace()
                && supports_state_rows()
                && supports_qk_l2_norm(),
            "patched build without the GDN capabilities: {:?}",
            build_info::CAPABILITIES
        );
        assert_eq!(skipped, 0, "{name}: cases skipped on the patched build");
        assert!(
            cuda_supports_patched_modes(),
            "patched build without the CUDA GDN capabilities: {:?}",
            build_info::CAPABILITIES
        );
    }
}

fn shape(s_v: usize, h_k: usize, h_v: usize, n_tokens: usize, n_seqs: usize) -> Shape {
    Shape {
        s_v,
        h_k,
        h_v,
        n_tokens,
        n_seqs,
        snapshots: 1,
    }
}

/// Every layout x broadcast x state mode, for 1 and several tokens and 1 and 2 sequences, at a
/// small size with 2 q/k heads shared by 6 value heads (tiled and interleaved differ).
#[test]
fn layouts_broadcasts_and_state_modes() {
    run(
        "layouts_broadcasts_and_state_modes",
        &layout_grid(QkNorm::Given, 1),
    );
}

/// The cases of [`layouts_broadcasts_and_state_modes`] with q and k normalised as `qk_norm` says,
/// seeds from `seed0 + 1`.
fn layout_grid(qk_norm: QkNorm, seed0: u64) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut seed = seed0;
    // 33 tokens: more than the CPU's chunk of 16 tokens per state row (patch 0038)
    for (n_tokens, n_seqs) in [(1, 1), (1, 2), (5, 1), (7, 2), (33, 2)] {
        for layout in [QkvLayout::Contiguous, QkvLayout::Permuted, QkvLayout::Fused] {
            for bcast in [Bcast::Tiled, Bcast::Interleaved] {
                for mode in [StateMode::Output, StateMode::InPlace, StateMode::Aliased] {
                    seed += 1;
                    cases.push(Case {
                        shape: shape(32, 2, 6, n_tokens, n_seqs),
                        layout,
                        bcast,
                        mode,
                        qk_norm,
                        threads: 1 + (seed as usize % 3),
                        seed,
                        key_gates: false,
                    });
                }
            }
        }
    }
    cases
}

/// Qwen3-Next-80B-A3B's linear-attention shape (S 128, 16 q/k heads, 32 value heads), one decode
/// token and a short prompt, laid out the way the model passes them.
#[test]
fn qwen3next_shape() {
    let mut cases = Vec::new();
    for (i, (n_tokens, n_seqs)) in [(1, 1), (1, 2), (4, 1), (40, 1)].into_iter().enumerate() {
        for bcast in [Bcast::Tiled, Bcast::Interleaved] {
            for mode in [StateMode::Output, StateMode::InPlace] {
                cases.push(Case {
                    shape: shape(128, 16, 32, n_tokens, n_seqs),
                    layout: QkvLayout::Fused,
                    bcast,
                    mode,
                    qk_norm: QkNorm::Given,
                    threads: 2,
                    seed: 100 + i as u64,
                    key_gates: false,
                });
            }
        }
    }
    run("qwen3next_shape", &cases);
}

/// One log decay per key (Kimi's KDA, `S[i][j] *= exp(g[i])`), at token counts below, at and
/// across the CPU's chunk of 16 tokens, with several snapshots too.
#[test]
fn key_gates() {
    let mut cases = Vec::new();
    let mut seed = 800;
    for (s_v, n_tokens, n_seqs, snapshots) in [
        (32, 1, 2, 1),
        (32, 16, 1, 1),
        (32, 21, 2, 1),
        (128, 19, 1, 1),
        (32, 6, 2, 3),
    ] {
        for bcast in [Bcast::Tiled, Bcast::Interleaved] {
            for mode in [StateMode::Output, StateMode::InPlace] {
                seed += 1;
                cases.push(Case {
                    shape: Shape {
                        snapshots,
                        ..shape(s_v, 2, 4, n_tokens, n_seqs)
                    },
                    layout: QkvLayout::Permuted,
                    bcast,
                    mode,
                    qk_norm: QkNorm::Given,
                    key_gates: true,
                    threads: 1 + (seed as usize % 2),
                    seed,
                });
            }
        }
    }
    run("key_gates", &cases);
}

/// Several snapshots (speculative rollback): fewer tokens than slots, as many, and more.
#[test]
fn snapshots() {
    let mut cases = Vec::new();
    for (i, (n_tokens, snapshots)) in [(2, 3), (3, 3), (6, 3), (1, 2)].into_iter().enumerate() {
        for (bcast, mode) in [
            (Bcast::Interleaved, StateMode::Output),
            (Bcast::Interleaved, StateMode::InPlace),
            (Bcast::Interleaved, StateMode::Aliased),
            (Bcast::Tiled, StateMode::Output),
        ] {
            cases.push(Case {
                shape: Shape {
                    snapshots,
                    ..shape(16, 2, 4, n_tokens, 2)
                },
                layout: QkvLayout::Permuted,
                bcast,
                mode,
                qk_norm: QkNorm::Given,
                threads: 2,
                seed: 200 + i as u64,
                key_gates: false,
            });
        }
    }
    run("snapshots", &cases);
}

/// Input states read from the cache rows by id (patch 0041): each sequence's own row (in
/// place), rows swapped between sequences (each input is another sequence's output: the kernel
/// must read them all before writing any), and one row shared by every sequence; one and
/// several tokens, snapshots, both chunk paths, the Qwen3-Next head shape. The result must match
/// the reference, and rows other than the written ones must keep their values (the shared
/// input row among them).
#[test]
fn state_rows_by_id() {
    let mut cases = Vec::new();
    let mut seed = 900;
    for (s_v, h_k, h_v, n_tokens, n_seqs, snapshots) in [
        (16, 2, 4, 1, 1, 1),
        (16, 2, 4, 1, 3, 1),
        (16, 2, 4, 5, 2, 1),
        (32, 2, 4, 21, 2, 1),
        (16, 2, 4, 3, 2, 3),
        (16, 2, 4, 1, 3, 2),
        (128, 16, 32, 1, 2, 1),
    ] {
        for ids in [RowIds::Same, RowIds::Reversed, RowIds::Shared] {
            for threads in [1, 2] {
                seed += 1;
                cases.push(Case {
                    shape: Shape {
                        snapshots,
                        ..shape(s_v, h_k, h_v, n_tokens, n_seqs)
                    },
                    layout: QkvLayout::Fused,
                    bcast: Bcast::Interleaved,
                    mode: StateMode::Rows(ids),
                    qk_norm: QkNorm::Given,
                    key_gates: false,
                    threads,
                    seed,
                });
            }
        }
    }
    run("state_rows_by_id", &cases);
}

/// The states read by row ids give the very bits of the gathered input states: the kernel's
/// arithmetic is the same, only where it reads the input differs.
#[test]
fn state_rows_match_the_gathered_states_bit_for_bit() {
    for (n_tokens, n_seqs, snapshots) in [(1, 1, 1), (1, 3, 1), (7, 2, 1), (2, 2, 3)] {
        let base = Case {
            shape: Shape {
                snapshots,
                ..shape(32, 2, 4, n_tokens, n_seqs)
            },
            layout: QkvLayout::Fused,
            bcast: Bcast::Interleaved,
            mode: StateMode::InPlace,
            qk_norm: QkNorm::Given,
            key_gates: false,
            threads: 2,
            seed: 950 + n_tokens as u64,
        };
        let Some(gathered) = base.cpu_output() else {
            continue;
        };
        for ids in [RowIds::Same, RowIds::Reversed] {
            let rows = Case {
                mode: StateMode::Rows(ids),
                ..base
            };
            let Some(got) = rows.cpu_output() else {
                continue;
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got.attn),
                bits(&gathered.attn),
                "{rows:?}: attention scores"
            );
            assert_eq!(
                bits(&got.states),
                bits(&gathered.states),
                "{rows:?}: states"
            );
            assert_eq!(got.clobbered, 0, "{rows:?}: rows outside the written ones");
        }
    }
}

/// As many q/k heads as value heads: both broadcasts are the identity, and must agree.
#[test]
fn equal_heads_are_unaffected_by_the_broadcast() {
    let cases: Vec<Case> = [Bcast::Tiled, Bcast::Interleaved]
        .into_iter()
        .map(|bcast| Case {
            shape: shape(32, 4, 4, 3, 2),
            layout: QkvLayout::Contiguous,
            bcast,
            mode: StateMode::Output,
            qk_norm: QkNorm::Given,
            threads: 2,
            seed: 300,
            key_gates: false,
        })
        .collect();
    run("equal_heads_are_unaffected_by_the_broadcast", &cases);
}

/// The reference itself: tiled and interleaved differ when heads are shared (so the tests above
/// can tell them apart), and one token from a zero state has a closed form.
#[test]
fn reference_distinguishes_the_broadcasts() {
    let s = shape(8, 2, 4, 2, 1);
    let inputs = Inputs::random(s, 7);
    let tiled = reference(s, Bcast::Tiled, &inputs);
    let inter = reference(s, Bcast::Interleaved, &inputs);
    assert!(nmse(&tiled.attn, &inter.attn) > 1e-3);

    // zero state, one token: S = β k vᵀ, so o[j] = β (k·q) v[j] / √S
    let s1 = shape(8, 1, 1, 1, 1);
    let mut x = Inputs::random(s1, 8);
    x.state.iter_mut().for_each(|v| *v = 0.0);
    let out = reference(s1, Bcast::Tiled, &x);
    let kq: f64 = x.k.iter().zip(&x.q).map(|(a, b)| f64::from(a * b)).sum();
    for (j, &o) in out.attn.iter().enumerate() {
        let want = f64::from(x.beta[0]) * kq * f64::from(x.v[j]) / (8f64).sqrt();
        assert!(
            (f64::from(o) - want).abs() < 1e-6,
            "o[{j}] = {o}, want {want}"
        );
    }
}

/// The eps of Qwen3-Next's norms (`f_norm_rms_eps`).
const EPS: f32 = 1e-6;

/// The op normalising q and k itself against the same op after the models' explicit norm nodes:
/// both against the f64 reference, and against each other (the kernel evaluates the norm in the
/// float steps of those nodes: the same bits).
fn check_qk_norm_against_graph(name: &str, cases: &[Case]) {
    let devices = accelerators();
    let mut tallies: Vec<Tally> = devices.iter().map(|_| Tally::default()).collect();
    let mut ran = 0;
    for case in cases {
        let QkNorm::InOp { eps } = case.qk_norm else {
            panic!("{case:?}: not an in-op norm case");
        };
        let graph = Case {
            qk_norm: QkNorm::Graph { eps },
            ..*case
        };
        if !graph.check(&mut tallies) {
            // upstream lacks the broadcast or state mode the case combines with the norm
            assert!(
                build_info::VARIANT != "patched",
                "{graph:?}: the explicit norm must run on the patched build"
            );
            continue;
        }
        if !case.check(&mut tallies) {
            continue;
        }
        ran += 1;
        let (a, b) = (
            case.cpu_output().expect("it ran above"),
            graph.cpu_output().expect("it ran above"),
        );
        let (e_attn, e_state) = (nmse(&a.attn, &b.attn), nmse(&a.states, &b.states));
        eprintln!("{case:?} vs the norm nodes: NMSE attn {e_attn:.3e}, states {e_state:.3e}");
        assert!(
            e_attn < NMSE_THRESHOLD && e_state < NMSE_THRESHOLD,
            "{case:?} against the explicit norm: NMSE attn {e_attn:.3e}, states {e_state:.3e}"
        );
        assert!(
            a == b,
            "{case:?}: not bit-identical to the explicit norm (NMSE attn {e_attn:.3e})"
        );
    }
    let skipped = cases.len() - ran;
    eprintln!(
        "{name}: {ran} cases run, {skipped} skipped on the {} build",
        build_info::VARIANT
    );
    for (device, t) in devices.iter().zip(&tallies) {
        eprintln!(
            "{name} on {device} (in-op and graph norm): {} cases passed, {} rejected by supports_op",
            t.passed, t.skipped
        );
    }
    if build_info::VARIANT == "patched" {
        assert!(supports_qk_l2_norm(), "{:?}", build_info::CAPABILITIES);
        assert_eq!(skipped, 0, "{name}: cases skipped on the patched build");
    }
}

/// q/k L2 norm in the op: every layout (contiguous, permuted views, strided views of one wider
/// tensor with NaN padding) x broadcast x state mode, one token (decode) and several (prompt),
/// one and two sequences.
#[test]
fn qk_l2_norm_layouts_broadcasts_and_state_modes() {
    check_qk_norm_against_graph(
        "qk_l2_norm_layouts_broadcasts_and_state_modes",
        &layout_grid(QkNorm::InOp { eps: EPS }, 400),
    );
}

/// q/k L2 norm in the op at Qwen3-Next-80B-A3B's shape, laid out as the model passes them (views
/// of the convolution output), interleaved, with and without the in-place state; a decode token,
/// two sequences decoding, and a 64-token prompt.
#[test]
fn qk_l2_norm_qwen3next_shape() {
    let mut cases = Vec::new();
    for (i, (n_tokens, n_seqs)) in [(1, 1), (1, 2), (64, 1)].into_iter().enumerate() {
        for (bcast, mode) in [
            (Bcast::Interleaved, StateMode::InPlace),
            (Bcast::Interleaved, StateMode::Output),
            (Bcast::Tiled, StateMode::Aliased),
        ] {
            cases.push(Case {
                shape: shape(128, 16, 32, n_tokens, n_seqs),
                layout: QkvLayout::Fused,
                bcast,
                mode,
                qk_norm: QkNorm::InOp { eps: EPS },
                threads: 2,
                seed: 500 + i as u64,
                key_gates: false,
            });
        }
    }
    check_qk_norm_against_graph("qk_l2_norm_qwen3next_shape", &cases);
}

/// q/k L2 norm in the op with several snapshots (speculative rollback).
#[test]
fn qk_l2_norm_snapshots() {
    let mut cases = Vec::new();
    for (i, (n_tokens, snapshots)) in [(2, 3), (6, 3), (1, 2)].into_iter().enumerate() {
        for mode in [StateMode::Output, StateMode::InPlace, StateMode::Aliased] {
            cases.push(Case {
                shape: Shape {
                    snapshots,
                    ..shape(16, 2, 4, n_tokens, 2)
                },
                layout: QkvLayout::Permuted,
                bcast: Bcast::Interleaved,
                mode,
                qk_norm: QkNorm::InOp { eps: EPS },
                threads: 2,
                seed: 600 + i as u64,
                key_gates: false,
            });
        }
    }
    check_qk_norm_against_graph("qk_l2_norm_snapshots", &cases);
}

/// A large eps, so that where it goes matters: `x / sqrt(sum(x²) + eps)`, not `sum / S + eps` or
/// `sqrt(sum) + eps`. The reference tells these apart (checked here), and the op must match it.
#[test]
fn qk_l2_norm_eps_is_added_to_the_sum_of_squares() {
    let eps = 0.5;
    let s = shape(16, 2, 4, 3, 1);
    let raw = Inputs::random_unnormalised(s, 700);
    let want = reference(s, Bcast::Interleaved, &raw.l2_normalised(s.s_v, eps));
    let no_eps = reference(s, Bcast::Interleaved, &raw.l2_normalised(s.s_v, 0.0));
    assert!(
        nmse(&no_eps.attn, &want.attn) > 1e-6,
        "eps too small to tell"
    );
    let cases: Vec<Case> = [QkvLayout::Fused, QkvLayout::Permuted]
        .into_iter()
        .map(|layout| Case {
            shape: s,
            layout,
            bcast: Bcast::Interleaved,
            mode: StateMode::InPlace,
            qk_norm: QkNorm::InOp { eps },
            threads: 2,
            seed: 700,
            key_gates: false,
        })
        .collect();
    check_qk_norm_against_graph("qk_l2_norm_eps_is_added_to_the_sum_of_squares", &cases);
}

/// The inputs of the norm cases are far from normalised (so an op that skips the norm fails),
/// and normalising unit rows with a tiny eps changes nothing measurable.
#[test]
fn unnormalised_inputs_need_the_norm() {
    let s = shape(32, 2, 6, 4, 1);
    let raw = Inputs::random_unnormalised(s, 800);
    let normed = reference(s, Bcast::Tiled, &raw.l2_normalised(s.s_v, EPS));
    let skipped = reference(s, Bcast::Tiled, &raw);
    assert!(nmse(&skipped.attn, &normed.attn) > 1e-2);
    assert!(nmse(&skipped.states, &normed.states) > 1e-2);

    let unit = Inputs::random(s, 801);
    let a = reference(s, Bcast::Tiled, &unit);
    let b = reference(s, Bcast::Tiled, &unit.l2_normalised(s.s_v, EPS));
    assert!(nmse(&a.attn, &b.attn) < 1e-10);
}
