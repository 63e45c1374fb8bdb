//! `GATED_DELTA_NET`, the gated delta rule of Qwen3-Next's linear attention, as a single-op
//! graph on a backend device (the CPU by default).
//!
//! For each sequence and value head the op carries an `S_v x S_v` state `S` through the tokens:
//! `S ← exp(g) S`, `δ = β (v − Sᵀk)`, `S ← S + k δᵀ`, `o = Sᵀq / √S_v`. The `H_k` heads of `q` and
//! `k` are shared by the `H_v` value heads, tiled (upstream) or interleaved (patch
//! `gdn-interleaved-head-broadcast`), and the final states go to the op's output (upstream) or
//! straight into rows of a cache tensor (patch `gdn-state-in-place`). The models L2-normalise each
//! q and k head vector first, with two graph nodes each (`RMS_NORM` and `SCALE`), or the op does it
//! itself (patch `gdn-qk-l2-norm`): see [`QkNorm`].
//!
//! The bindings are generated from each variant's headers, so the patched API
//! (`ggml_gated_delta_net_set_bcast`, `ggml_gated_delta_net_state_inplace`,
//! `ggml_gated_delta_net_set_qk_l2_norm`) does not exist when building against upstream. The graph
//! here therefore sets the tensor fields those functions set (op param 1 for the broadcast;
//! `src[6]` and the shorter output for the in-place state; op params 2 and 3 for the q/k norm), and
//! [`supports_interleaved`] / [`supports_state_inplace`] / [`supports_qk_l2_norm`] say whether the
//! kernel reads them: whether the build declares the [`capability`](crate::capability::has) of the
//! patch that adds each.

use llamacpp_sys as sys;

use crate::Error;
use crate::capability::{self, has};
use crate::device::Device;
use crate::graph::{Builder, OpGraph, Tensor};
use llamacpp_ggml::SplitMix64;

/// The sizes of one `GATED_DELTA_NET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Head size of q, k and v (`S_k == S_v`; 128 in Qwen3-Next).
    pub s_v: usize,
    /// q/k heads (16 in Qwen3-Next-80B-A3B).
    pub h_k: usize,
    /// Value heads, a multiple of `h_k` (32 in Qwen3-Next-80B-A3B).
    pub h_v: usize,
    /// Tokens per sequence.
    pub n_tokens: usize,
    /// Sequences.
    pub n_seqs: usize,
    /// State snapshots kept (`K`: 1 keeps the final state; more for speculative rollback).
    pub snapshots: usize,
}

impl Shape {
    /// Snapshots the op writes: the last `min(K, n_tokens)` states.
    pub fn written(&self) -> usize {
        self.snapshots.min(self.n_tokens)
    }

    /// Floats of one sequence's state (all value heads): a row of the recurrent cache.
    pub fn state_row(&self) -> usize {
        self.s_v * self.s_v * self.h_v
    }
}

/// How the `h_v` value heads share the `h_k` q/k heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bcast {
    /// Value head `h` reads q/k head `h % h_k` (ggml's default).
    Tiled,
    /// Value head `h` reads q/k head `h / (h_v / h_k)` (Qwen3-Next's grouping).
    Interleaved,
}

impl Bcast {
    /// The q/k head value head `h` reads.
    pub fn qk_head(self, h: usize, h_k: usize, h_v: usize) -> usize {
        match self {
            Self::Tiled => h % h_k,
            Self::Interleaved => h / (h_v / h_k),
        }
    }
}

/// How q, k and v are laid out in memory; the values are the same logical `[seq][token][head][S]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkvLayout {
    /// Three contiguous `[S, H, T, N]` tensors.
    Contiguous,
    /// Each stored `[S, T, H, N]` and read through a permuted view: one token's heads are
    /// `T` rows apart.
    Permuted,
    /// Views into one `[S (2 h_k + h_v) + pad, T, N]` tensor, the way the models slice their
    /// convolution output; the padding holds NaN, so reading it fails the comparison.
    Fused,
}

/// Extra floats per token row in [`QkvLayout::Fused`].
const PAD: usize = 16;

/// Where the final state(s) go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateMode {
    /// After the attention scores in the op's output (upstream).
    Output,
    /// Into rows of a separate cache tensor, as the recurrent cache of a model.
    InPlace,
    /// Into the very cache rows the input state is read from.
    Aliased,
    /// Into rows of the cache, reading each sequence's input state from the cache row an id
    /// names (`ggml_gated_delta_net_state_rows`: `src[5]` every cache row, `src[7]` the ids).
    Rows(RowIds),
}

/// Which cache row holds each sequence's input state in [`StateMode::Rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowIds {
    /// Its own written row (sequence `i` reads and writes row `HEAD + i`, in place).
    Same,
    /// The written row of the sequence at the mirror position (`HEAD + n_seqs - 1 - i`): with
    /// several sequences each one's input is another one's output, as after the recurrent
    /// cache swapped cells.
    Reversed,
    /// One row before the written ones for every sequence, as after a sequence copy; the
    /// inputs must then hold one state for every sequence.
    Shared,
}

impl RowIds {
    /// The cache row sequence `i` of `n_seqs` reads.
    fn row(self, i: usize, n_seqs: usize) -> usize {
        match self {
            Self::Same => HEAD + i,
            Self::Reversed => HEAD + n_seqs - 1 - i,
            Self::Shared => HEAD - 1,
        }
    }
}

/// Who L2-normalises the q and k head vectors: `x / sqrt(sum(x²) + eps)` per `S`-long row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QkNorm {
    /// Nobody: q and k are given normalised ([`Inputs::random`] makes unit rows).
    Given,
    /// Graph nodes before the op, as the models build them (`build_gdn_l2_norm`:
    /// `ggml_scale(ggml_rms_norm(x, eps / S), 1 / sqrt(S))`), reading q and k in their layout.
    Graph {
        /// Added to the sum of squares.
        eps: f32,
    },
    /// The op itself, on the rows it reads (`ggml_gated_delta_net_set_qk_l2_norm`).
    InOp {
        /// Added to the sum of squares.
        eps: f32,
    },
}

impl QkNorm {
    /// The eps of a normalisation, `None` for [`QkNorm::Given`].
    pub fn eps(self) -> Option<f32> {
        match self {
            Self::Given => None,
            Self::Graph { eps } | Self::InOp { eps } => Some(eps),
        }
    }
}

/// Cache rows before the written ones (their content must survive the op).
const HEAD: usize = 1;
/// Cache rows after the written ones, per snapshot group.
const TAIL: usize = 2;

/// Whether this build's CPU kernel implements [`Bcast::Interleaved`]
/// ([`capability::GDN_INTERLEAVED_BROADCAST`]).
pub fn supports_interleaved() -> bool {
    has(capability::GDN_INTERLEAVED_BROADCAST)
}

/// Whether this build's CPU kernel implements [`StateMode::InPlace`] and [`StateMode::Aliased`]
/// ([`capability::GDN_STATE_IN_PLACE`]).
pub fn supports_state_inplace() -> bool {
    has(capability::GDN_STATE_IN_PLACE)
}

/// Whether this build's CPU kernel implements [`StateMode::Rows`]
/// ([`capability::GDN_STATE_ROWS`]).
pub fn supports_state_rows() -> bool {
    has(capability::GDN_STATE_ROWS)
}

/// Whether this build's CPU kernel implements [`QkNorm::InOp`] ([`capability::GDN_QK_L2_NORM`]).
pub fn supports_qk_l2_norm() -> bool {
    has(capability::GDN_QK_L2_NORM)
}

/// Whether this build's Vulkan backend implements the interleaved broadcast, the in-place state
/// and the q/k L2 norm (the `vulkan-gdn-*` capabilities); without them, its `supports_op`
/// rejects all three.
pub fn vulkan_supports_patched_modes() -> bool {
    [
        capability::VULKAN_GDN_INTERLEAVED_BROADCAST,
        capability::VULKAN_GDN_STATE_IN_PLACE,
        capability::VULKAN_GDN_QK_L2_NORM,
    ]
    .into_iter()
    .all(has)
}

/// Whether this build's CUDA backend implements the same three forms (the `cuda-gdn-*`
/// capabilities); without them, its `supports_op` rejects them.
pub fn cuda_supports_patched_modes() -> bool {
    [
        capability::CUDA_GDN_INTERLEAVED_BROADCAST,
        capability::CUDA_GDN_STATE_IN_PLACE,
        capability::CUDA_GDN_QK_L2_NORM,
    ]
    .into_iter()
    .all(has)
}

/// The data of one `GATED_DELTA_NET`, in logical order.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// `[seq][token][h_k][S]`, each head vector of unit L2 norm (as the models normalise it), or
    /// not ([`Inputs::random_unnormalised`], for [`QkNorm::Graph`] and [`QkNorm::InOp`]).
    pub q: Vec<f32>,
    /// `[seq][token][h_k][S]`, unit L2 norm per head (or not, as `q`).
    pub k: Vec<f32>,
    /// `[seq][token][h_v][S]`.
    pub v: Vec<f32>,
    /// Log decay, `[seq][token][h_v]`, in [-1, 0); or one per key, `[seq][token][h_v][S]`
    /// ([`Inputs::with_key_gates`]: Kimi's KDA, `S[i][j] *= exp(g[i])`).
    pub g: Vec<f32>,
    /// Write strength, `[seq][token][h_v]`, in [0, 1).
    pub beta: Vec<f32>,
    /// Initial state, `[seq][h_v][j][i]` holding `S[i][j]` (ggml's `[S, S, H, N]`).
    pub state: Vec<f32>,
}

impl Inputs {
    /// Random inputs for `shape`.
    pub fn random(shape: Shape, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let Shape {
            s_v,
            h_k,
            h_v,
            n_tokens,
            n_seqs,
            ..
        } = shape;
        let rows = n_seqs * n_tokens;
        let mut unit_rows = |n: usize| -> Vec<f32> {
            let mut x: Vec<f32> = (0..n * s_v).map(|_| rng.next_symmetric()).collect();
            for row in x.chunks_mut(s_v) {
                let norm = row.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
                row.iter_mut().for_each(|a| *a /= norm);
            }
            x
        };
        let q = unit_rows(rows * h_k);
        let k = unit_rows(rows * h_k);
        let v = (0..rows * h_v * s_v)
            .map(|_| rng.next_symmetric())
            .collect();
        let g = (0..rows * h_v).map(|_| -(rng.next_f64() as f32)).collect();
        let beta = (0..rows * h_v).map(|_| rng.next_f64() as f32).collect();
        let state = (0..n_seqs * shape.state_row())
            .map(|_| rng.next_symmetric() * 0.5)
            .collect();
        Self {
            q,
            k,
            v,
            g,
            beta,
            state,
        }
    }

    /// Random inputs whose q and k head vectors are not normalised: the unit rows of
    /// [`Inputs::random`], each scaled by its own factor between 1/16 and 16 (log-uniform).
    pub fn random_unnormalised(shape: Shape, seed: u64) -> Self {
        let mut x = Self::random(shape, seed);
        let mut rng = SplitMix64::new(seed ^ 0x5eed_0f12_0a11);
        for row in x.q.chunks_mut(shape.s_v).chain(x.k.chunks_mut(shape.s_v)) {
            let f = (16f64).powf(rng.next_f64() * 2.0 - 1.0) as f32;
            row.iter_mut().for_each(|a| *a *= f);
        }
        x
    }

    /// These inputs with one log decay per key (`g` of `[seq][token][h_v][S]`, in [-1, 0)), drawn
    /// from `seed`; `beta` and the rest unchanged.
    pub fn with_key_gates(mut self, shape: Shape, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x6a7e_5bee);
        self.g = (0..self.g.len() * shape.s_v)
            .map(|_| -(rng.next_f64() as f32))
            .collect();
        self
    }

    /// Log decays per token and value head: 1 (one per head) or `S` (one per key).
    fn gate_width(&self) -> usize {
        self.g.len() / self.beta.len().max(1)
    }

    /// These inputs with every q and k head vector replaced by `x / sqrt(sum(x²) + eps)`,
    /// computed in f64.
    pub fn l2_normalised(&self, s_v: usize, eps: f32) -> Self {
        let norm = |x: &[f32]| -> Vec<f32> {
            let mut out = Vec::with_capacity(x.len());
            for row in x.chunks(s_v) {
                let sum: f64 = row.iter().map(|&a| f64::from(a) * f64::from(a)).sum();
                let inv = 1.0 / (sum + f64::from(eps)).sqrt();
                out.extend(row.iter().map(|&a| (f64::from(a) * inv) as f32));
            }
            out
        };
        Self {
            q: norm(&self.q),
            k: norm(&self.k),
            ..self.clone()
        }
    }
}

/// What the op produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Attention scores, `[seq][token][h_v][S]`.
    pub attn: Vec<f32>,
    /// The written snapshots, `[slot][seq][h_v][j][i]` (slot 0 = final state).
    pub states: Vec<f32>,
    /// Cache values outside the written rows that the op changed (0 unless it wrote too much;
    /// always 0 for [`StateMode::Output`]).
    pub clobbered: usize,
}

/// A built `GATED_DELTA_NET` graph with its data uploaded, ready to compute.
pub struct GatedDeltaNet {
    graph: OpGraph,
    /// The cache tensor and the values uploaded into it.
    cache: Option<(Tensor, Vec<f32>)>,
    shape: Shape,
    mode: StateMode,
}

impl GatedDeltaNet {
    /// Builds the graph on the CPU, computed with `threads` threads.
    pub fn new(
        shape: Shape,
        layout: QkvLayout,
        bcast: Bcast,
        mode: StateMode,
        qk_norm: QkNorm,
        inputs: &Inputs,
        threads: usize,
    ) -> Result<Self, Error> {
        Self::on(
            Device::cpu(),
            shape,
            layout,
            bcast,
            mode,
            qk_norm,
            inputs,
            threads,
        )
    }

    /// Builds the graph on `device` (`threads` counts on the CPU only). Fails with
    /// [`Error::Unsupported`] when this build of ggml lacks the broadcast or state mode, and with
    /// [`Error::DeviceUnsupported`] when the device rejects the op as built.
    #[allow(clippy::too_many_arguments)]
    pub fn on(
        device: Device,
        shape: Shape,
        layout: QkvLayout,
        bcast: Bcast,
        mode: StateMode,
        qk_norm: QkNorm,
        inputs: &Inputs,
        threads: usize,
    ) -> Result<Self, Error> {
        let Shape {
            s_v,
            h_k,
            h_v,
            n_tokens,
            n_seqs,
            snapshots,
        } = shape;
        if bcast == Bcast::Interleaved && !supports_interleaved() {
            return Err(Error::Unsupported("interleaved q/k broadcast".into()));
        }
        if mode != StateMode::Output && !supports_state_inplace() {
            return Err(Error::Unsupported("in-place state".into()));
        }
        if matches!(mode, StateMode::Rows(_)) && !supports_state_rows() {
            return Err(Error::Unsupported("input states read by row ids".into()));
        }
        if matches!(qk_norm, QkNorm::InOp { .. }) && !supports_qk_l2_norm() {
            return Err(Error::Unsupported("q/k L2 norm in the op".into()));
        }
        let sizes_ok = s_v > 0
            && h_k > 0
            && h_v.is_multiple_of(h_k)
            && n_tokens > 0
            && n_seqs > 0
            && snapshots > 0
            && inputs.q.len() == n_seqs * n_tokens * h_k * s_v
            && inputs.k.len() == inputs.q.len()
            && inputs.v.len() == n_seqs * n_tokens * h_v * s_v
            && inputs.beta.len() == n_seqs * n_tokens * h_v
            && (inputs.g.len() == inputs.beta.len() || inputs.g.len() == inputs.beta.len() * s_v)
            && inputs.state.len() == n_seqs * shape.state_row();
        if !sizes_ok {
            return Err(Error::Shape(format!("inputs do not match {shape:?}")));
        }
        let d = shape.state_row();
        if mode == StateMode::Rows(RowIds::Shared)
            && inputs.state.chunks(d).any(|row| row != &inputs.state[..d])
        {
            return Err(Error::Shape(
                "shared input rows with distinct states".into(),
            ));
        }
        // q, k and v in the memory order of the layout's base tensors
        let permuted: [Vec<f32>; 3];
        let fused: Vec<f32>;
        let qkv: Vec<&[f32]> = match layout {
            QkvLayout::Contiguous => vec![&inputs.q[..], &inputs.k[..], &inputs.v[..]],
            QkvLayout::Permuted => {
                permuted = [
                    token_major_to_head_major(&inputs.q, shape, h_k),
                    token_major_to_head_major(&inputs.k, shape, h_k),
                    token_major_to_head_major(&inputs.v, shape, h_v),
                ];
                permuted.iter().map(Vec::as_slice).collect()
            }
            QkvLayout::Fused => {
                fused = fuse(shape, inputs, fused_width(shape));
                vec![&fused[..]]
            }
        };
        // the cache: distinct values everywhere, the input states in the aliased rows
        let cache_init = (mode != StateMode::Output).then(|| {
            let d = shape.state_row();
            let mut init: Vec<f32> = (0..d * cells(shape) * shape.written())
                .map(|x| (x % 977) as f32 * 1e-3 - 0.4)
                .collect();
            match mode {
                StateMode::Aliased => {
                    init[HEAD * d..(HEAD + n_seqs) * d].copy_from_slice(&inputs.state);
                }
                StateMode::Rows(ids) => {
                    for (i, state) in inputs.state.chunks(d).enumerate() {
                        let row = ids.row(i, n_seqs);
                        init[row * d..(row + 1) * d].copy_from_slice(state);
                    }
                }
                StateMode::Output | StateMode::InPlace => {}
            }
            init
        });
        let row_ids: Vec<i32> = match mode {
            StateMode::Rows(ids) => (0..n_seqs).map(|i| ids.row(i, n_seqs) as i32).collect(),
            _ => Vec::new(),
        };

        let mut g = Builder::new(16)?;
        let (q, k, v) = build_qkv(&mut g, shape, layout, &qkv)?;
        let (q, k) = match qk_norm {
            QkNorm::Graph { eps } => (
                graph_l2_norm(&mut g, q, s_v, eps)?,
                graph_l2_norm(&mut g, k, s_v, eps)?,
            ),
            QkNorm::Given | QkNorm::InOp { .. } => (q, k),
        };
        let per_token = [1, h_v, n_tokens, n_seqs];
        let gate_shape = [inputs.gate_width(), h_v, n_tokens, n_seqs];
        let gate = g.input(sys::GGML_TYPE_F32, &gate_shape, "g", &inputs.g)?;
        let beta = g.input(sys::GGML_TYPE_F32, &per_token, "beta", &inputs.beta)?;
        let (state, cache) =
            build_state(&mut g, shape, mode, &inputs.state, cache_init.as_deref())?;
        // every cache row as the op reads them by id, and the ids
        let state_rows = match (mode, cache) {
            (StateMode::Rows(_), Some(cache)) => {
                let n_rows = cells(shape) * shape.written();
                let f = size_of::<f32>();
                let all = g.view(
                    cache,
                    &[s_v, s_v, h_v, n_rows],
                    &[s_v * f, s_v * s_v * f, d * f],
                    0,
                )?;
                Some((
                    all,
                    g.input(sys::GGML_TYPE_I32, &[n_seqs], "ids", &row_ids)?,
                ))
            }
            _ => None,
        };
        // SAFETY: one node over tensors of this builder whose shapes satisfy
        // ggml_gated_delta_net's asserts (checked above).
        let out = unsafe {
            g.node("ggml_gated_delta_net", |c| {
                sys::ggml_gated_delta_net(
                    c,
                    q.as_ptr(),
                    k.as_ptr(),
                    v.as_ptr(),
                    gate.as_ptr(),
                    beta.as_ptr(),
                    state.as_ptr(),
                    snapshots as i64,
                )
            })?
        };
        apply_patched_params(&mut g, out, shape, bcast, qk_norm, cache, state_rows)?;
        let graph = g.finish(out, device, threads)?;
        Ok(Self {
            graph,
            cache: cache.zip(cache_init),
            shape,
            mode,
        })
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// The attention scores and the written snapshots.
    pub fn output(&self) -> Output {
        let s = self.shape;
        let n_attn = s.n_seqs * s.n_tokens * s.h_v * s.s_v;
        let n_states = s.written() * s.n_seqs * s.state_row();
        let all = self.graph.read_f32(self.graph.out());
        let attn = all[..n_attn].to_vec();
        let Some((cache, init)) = &self.cache else {
            let states = all[n_attn..n_attn + n_states].to_vec();
            return Output {
                attn,
                states,
                clobbered: 0,
            };
        };
        let now = self.graph.read_f32(*cache);
        let d = s.state_row();
        let cells = cells(s);
        let mut states = Vec::with_capacity(n_states);
        let mut clobbered = 0;
        for (row, (a, b)) in now.chunks(d).zip(init.chunks(d)).enumerate() {
            let cell = row % cells;
            if (HEAD..HEAD + s.n_seqs).contains(&cell) {
                states.extend_from_slice(a);
            } else {
                clobbered += a
                    .iter()
                    .zip(b)
                    .filter(|(x, y)| x.to_bits() != y.to_bits())
                    .count();
            }
        }
        debug_assert!(self.mode != StateMode::Output);
        Output {
            attn,
            states,
            clobbered,
        }
    }
}

/// Floats per token row of [`QkvLayout::Fused`]'s base: q, k and v, then the padding.
fn fused_width(shape: Shape) -> usize {
    shape.s_v * (2 * shape.h_k + shape.h_v) + PAD
}

/// Rows of the cache per snapshot group: `HEAD`, one per sequence (the written ones), `TAIL`.
fn cells(shape: Shape) -> usize {
    HEAD + shape.n_seqs + TAIL
}

/// q, k and v as the op reads them in `layout`, built over `data` (the bases' values in memory
/// order: three tensors, or the one fused tensor).
fn build_qkv<'a>(
    g: &mut Builder<'a>,
    shape: Shape,
    layout: QkvLayout,
    data: &[&'a [f32]],
) -> Result<(Tensor, Tensor, Tensor), Error> {
    let Shape {
        s_v,
        h_k,
        h_v,
        n_tokens,
        n_seqs,
        ..
    } = shape;
    let f32_t = sys::GGML_TYPE_F32;
    match (layout, data) {
        (QkvLayout::Contiguous, &[q, k, v]) => Ok((
            g.input(f32_t, &[s_v, h_k, n_tokens, n_seqs], "q", q)?,
            g.input(f32_t, &[s_v, h_k, n_tokens, n_seqs], "k", k)?,
            g.input(f32_t, &[s_v, h_v, n_tokens, n_seqs], "v", v)?,
        )),
        (QkvLayout::Permuted, &[q, k, v]) => {
            let qb = g.input(f32_t, &[s_v, n_tokens, h_k, n_seqs], "q", q)?;
            let kb = g.input(f32_t, &[s_v, n_tokens, h_k, n_seqs], "k", k)?;
            let vb = g.input(f32_t, &[s_v, n_tokens, h_v, n_seqs], "v", v)?;
            let axes = [0, 2, 1, 3];
            Ok((
                g.permute(qb, axes)?,
                g.permute(kb, axes)?,
                g.permute(vb, axes)?,
            ))
        }
        (QkvLayout::Fused, &[qkv]) => {
            let f = size_of::<f32>();
            let b = g.input(f32_t, &[fused_width(shape), n_tokens, n_seqs], "qkv", qkv)?;
            let nb = g.nb(b);
            let mut view = |heads: usize, at: usize| {
                g.view(
                    b,
                    &[s_v, heads, n_tokens, n_seqs],
                    &[s_v * f, nb[1], nb[2]],
                    at * f,
                )
            };
            Ok((
                view(h_k, 0)?,
                view(h_k, s_v * h_k)?,
                view(h_v, 2 * s_v * h_k)?,
            ))
        }
        _ => Err(Error::Shape(format!(
            "{} q/k/v bases for {layout:?}",
            data.len()
        ))),
    }
}

/// What the models build to L2-normalise `x` (`build_gdn_l2_norm`):
/// `ggml_scale(ggml_rms_norm(x, eps / S), 1 / sqrt(S))`, i.e.
/// `x / sqrt(sum(x²) / S + eps / S) / sqrt(S)`.
fn graph_l2_norm(g: &mut Builder<'_>, x: Tensor, s_v: usize, eps: f32) -> Result<Tensor, Error> {
    let n = s_v as f32;
    // SAFETY: one node over an F32 tensor of this builder.
    let rms = unsafe {
        g.node("ggml_rms_norm", |c| {
            sys::ggml_rms_norm(c, x.as_ptr(), eps / n)
        })?
    };
    // SAFETY: as above.
    unsafe {
        g.node("ggml_scale", |c| {
            sys::ggml_scale(c, rms.as_ptr(), 1.0 / n.sqrt())
        })
    }
}

/// The op's input state, and the cache tensor for [`StateMode::InPlace`] and
/// [`StateMode::Aliased`] (`snapshots` groups of [`cells`] rows, holding `cache_init`); the
/// aliased state is a view of the cache's written rows.
fn build_state<'a>(
    g: &mut Builder<'a>,
    shape: Shape,
    mode: StateMode,
    state: &'a [f32],
    cache_init: Option<&'a [f32]>,
) -> Result<(Tensor, Option<Tensor>), Error> {
    let Shape {
        s_v, h_v, n_seqs, ..
    } = shape;
    let (f, d) = (size_of::<f32>(), shape.state_row());
    let cache = match (mode, cache_init) {
        (StateMode::Output, _) => None,
        (StateMode::InPlace | StateMode::Aliased | StateMode::Rows(_), Some(init)) => {
            Some(g.input(
                sys::GGML_TYPE_F32,
                &[d, cells(shape) * shape.written()],
                "cache",
                init,
            )?)
        }
        (_, None) => return Err(Error::Shape(format!("{mode:?} without a cache"))),
    };
    // (ggml_gated_delta_net checks the state rows of StateMode::Rows in this shape: the op's
    // node then reads every row by id, see apply_patched_params)
    let state = match (mode, cache) {
        (StateMode::Aliased | StateMode::Rows(_), Some(cache)) => g.view(
            cache,
            &[s_v, s_v, h_v, n_seqs],
            &[s_v * f, s_v * s_v * f, d * f],
            HEAD * d * f,
        )?,
        _ => g.input(sys::GGML_TYPE_F32, &[s_v, s_v, h_v, n_seqs], "state", state)?,
    };
    Ok((state, cache))
}

/// Sets on the op's node `out` the fields the patched API's setters write (see the top of this
/// file): op param 1 for the interleaved broadcast, op params 2 and 3 for the q/k norm, and for
/// the in-place state `src[6]` (the cache rows the snapshots go to) with the output shortened to
/// the attention scores, and for [`StateMode::Rows`] `src[5]` every cache row and `src[7]` the
/// ids (`state_rows`).
fn apply_patched_params(
    g: &mut Builder<'_>,
    out: Tensor,
    shape: Shape,
    bcast: Bcast,
    qk_norm: QkNorm,
    cache: Option<Tensor>,
    state_rows: Option<(Tensor, Tensor)>,
) -> Result<(), Error> {
    let (f, d) = (size_of::<f32>(), shape.state_row());
    let cells = cells(shape);
    // snapshots into rows (seq, slot) of the cache
    let state_dst = match cache {
        Some(cache) => Some(g.view(
            cache,
            &[d, shape.n_seqs, shape.written()],
            &[d * f, cells * d * f],
            HEAD * d * f,
        )?),
        None => None,
    };
    let rows = (shape.n_tokens * shape.n_seqs) as i64;
    let out = out.as_ptr();
    // SAFETY: out is the op's node, a live tensor of g (which is alive); nothing is allocated
    // yet, and these fields are the ones the patched setters write, which the kernels of a build
    // with the capability read (the caller checked it).
    unsafe {
        if bcast == Bcast::Interleaved {
            // ggml_gated_delta_net_set_bcast(out, GGML_GDN_BCAST_INTERLEAVED)
            (*out).op_params[1] = 1;
        }
        if let QkNorm::InOp { eps } = qk_norm {
            // ggml_gated_delta_net_set_qk_l2_norm(out, eps): on in param 2, eps in param 3
            (*out).op_params[2] = 1;
            (*out).op_params[3] = eps.to_bits() as i32;
        }
        if let Some(dst) = state_dst {
            // ggml_gated_delta_net_state_inplace: the output keeps the attention scores only
            (*out).src[6] = dst.as_ptr();
            (*out).ne[1] = rows;
            (*out).nb[2] = (*out).nb[1] * rows as usize;
            (*out).nb[3] = (*out).nb[2];
        }
        if let Some((all, ids)) = state_rows {
            // ggml_gated_delta_net_state_rows: sequence i reads row ids[i] of every row
            (*out).src[5] = all.as_ptr();
            (*out).src[7] = ids.as_ptr();
        }
    }
    Ok(())
}

/// `[seq][token][head][S]` → `[seq][head][token][S]` (the base of a permuted view).
fn token_major_to_head_major(x: &[f32], shape: Shape, heads: usize) -> Vec<f32> {
    let (s, t_n) = (shape.s_v, shape.n_tokens);
    let mut out = vec![0f32; x.len()];
    for n in 0..shape.n_seqs {
        for t in 0..t_n {
            for h in 0..heads {
                let from = ((n * t_n + t) * heads + h) * s;
                let to = ((n * heads + h) * t_n + t) * s;
                out[to..to + s].copy_from_slice(&x[from..from + s]);
            }
        }
    }
    out
}

/// q, k and v of each token in one row of `width` floats (q, k, v, then NaN padding).
fn fuse(shape: Shape, inputs: &Inputs, width: usize) -> Vec<f32> {
    let qk = shape.s_v * shape.h_k;
    let vw = shape.s_v * shape.h_v;
    let rows = shape.n_seqs * shape.n_tokens;
    let mut out = Vec::with_capacity(rows * width);
    for r in 0..rows {
        out.extend_from_slice(&inputs.q[r * qk..][..qk]);
        out.extend_from_slice(&inputs.k[r * qk..][..qk]);
        out.extend_from_slice(&inputs.v[r * vw..][..vw]);
        out.extend(std::iter::repeat_n(f32::NAN, width - 2 * qk - vw));
    }
    out
}

/// The op computed in Rust, in f64.
pub fn reference(shape: Shape, bcast: Bcast, inputs: &Inputs) -> Output {
    let Shape {
        s_v: s,
        h_k,
        h_v,
        n_tokens,
        n_seqs,
        ..
    } = shape;
    let written = shape.written();
    let scale = 1.0 / (s as f64).sqrt();
    let mut attn = vec![0f32; n_seqs * n_tokens * h_v * s];
    let mut states = vec![0f32; written * n_seqs * shape.state_row()];
    let mut delta = vec![0f64; s];
    for n in 0..n_seqs {
        for h in 0..h_v {
            let kh = bcast.qk_head(h, h_k, h_v);
            let base = (n * h_v + h) * s * s;
            // st[j * s + i] = S[i][j]
            let mut st: Vec<f64> = inputs.state[base..base + s * s]
                .iter()
                .map(|&x| f64::from(x))
                .collect();
            for t in 0..n_tokens {
                let row = n * n_tokens + t;
                let gw = inputs.gate_width();
                let gates = &inputs.g[(row * h_v + h) * gw..][..gw];
                let beta = f64::from(inputs.beta[row * h_v + h]);
                let q = &inputs.q[(row * h_k + kh) * s..][..s];
                let k = &inputs.k[(row * h_k + kh) * s..][..s];
                let v = &inputs.v[(row * h_v + h) * s..][..s];
                // st[j * s + i] *= exp(g[i]) (one g per key) or exp(g)
                for (at, x) in st.iter_mut().enumerate() {
                    *x *= f64::from(gates[(at % s) % gw]).exp();
                }
                for (j, dj) in delta.iter_mut().enumerate() {
                    let sk: f64 = (0..s).map(|i| st[j * s + i] * f64::from(k[i])).sum();
                    *dj = (f64::from(v[j]) - sk) * beta;
                }
                for (j, &dj) in delta.iter().enumerate() {
                    for i in 0..s {
                        st[j * s + i] += f64::from(k[i]) * dj;
                    }
                }
                let o = &mut attn[(row * h_v + h) * s..][..s];
                for (j, oj) in o.iter_mut().enumerate() {
                    let sq: f64 = (0..s).map(|i| st[j * s + i] * f64::from(q[i])).sum();
                    *oj = (sq * scale) as f32;
                }
                let slot = n_tokens - 1 - t;
                if slot < written {
                    let at = ((slot * n_seqs + n) * h_v + h) * s * s;
                    for (d, &x) in states[at..at + s * s].iter_mut().zip(&st) {
                        *d = x as f32;
                    }
                }
            }
        }
    }
    Output {
        attn,
        states,
        clobbered: 0,
    }
}
