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
//! kernel reads them.

use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::Error;
use crate::device::{Backend, Device};
use crate::ggml::{self, Buffer, Context, download, non_null, upload};
use crate::rng::Rng;

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

/// Whether this build's CPU kernel implements [`Bcast::Interleaved`].
pub fn supports_interleaved() -> bool {
    has_patch("gdn-interleaved-head-broadcast")
}

/// Whether this build's CPU kernel implements [`StateMode::InPlace`] and [`StateMode::Aliased`].
pub fn supports_state_inplace() -> bool {
    has_patch("gdn-state-in-place")
}

/// Whether this build's CPU kernel implements [`QkNorm::InOp`].
pub fn supports_qk_l2_norm() -> bool {
    has_patch("gdn-qk-l2-norm")
}

/// Whether this build's Vulkan backend implements the interleaved broadcast, the in-place state
/// and the q/k L2 norm (patch `vulkan-gdn-interleaved-qk-norm-state-in-place`); without it, its
/// `supports_op` rejects all three.
pub fn vulkan_supports_patched_modes() -> bool {
    has_patch("vulkan-gdn-interleaved-qk-norm-state-in-place")
}

/// Whether this build's CUDA backend implements the same three forms (patch
/// `cuda-gdn-interleaved-qk-norm-state-in-place`); without it, its `supports_op` rejects them.
pub fn cuda_supports_patched_modes() -> bool {
    has_patch("cuda-gdn-interleaved-qk-norm-state-in-place")
}

fn has_patch(name: &str) -> bool {
    sys::build_info::PATCHES
        .iter()
        .any(|(file, _)| file.contains(name))
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
    /// Log decay, `[seq][token][h_v]`, in [-1, 0).
    pub g: Vec<f32>,
    /// Write strength, `[seq][token][h_v]`, in [0, 1).
    pub beta: Vec<f32>,
    /// Initial state, `[seq][h_v][j][i]` holding `S[i][j]` (ggml's `[S, S, H, N]`).
    pub state: Vec<f32>,
}

impl Inputs {
    /// Random inputs for `shape`.
    pub fn random(shape: Shape, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
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
            let mut x: Vec<f32> = (0..n * s_v).map(|_| rng.uniform()).collect();
            for row in x.chunks_mut(s_v) {
                let norm = row.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
                row.iter_mut().for_each(|a| *a /= norm);
            }
            x
        };
        let q = unit_rows(rows * h_k);
        let k = unit_rows(rows * h_k);
        let v = (0..rows * h_v * s_v).map(|_| rng.uniform()).collect();
        let g = (0..rows * h_v).map(|_| -(rng.unit() as f32)).collect();
        let beta = (0..rows * h_v).map(|_| rng.unit() as f32).collect();
        let state = (0..n_seqs * shape.state_row())
            .map(|_| rng.uniform() * 0.5)
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
        let mut rng = Rng::new(seed ^ 0x5eed_0f12_0a11);
        for row in x.q.chunks_mut(shape.s_v).chain(x.k.chunks_mut(shape.s_v)) {
            let f = (16f64).powf(rng.unit() * 2.0 - 1.0) as f32;
            row.iter_mut().for_each(|a| *a *= f);
        }
        x
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
    backend: Backend,
    // Tensors live in the context and point into the buffer: both are kept while the raw
    // pointers below are used.
    _buffer: Buffer,
    _ctx: Context,
    out: NonNull<sys::ggml_tensor>,
    cache: Option<(NonNull<sys::ggml_tensor>, Vec<f32>)>,
    graph: NonNull<sys::ggml_cgraph>,
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
            && inputs.g.len() == n_seqs * n_tokens * h_v
            && inputs.beta.len() == inputs.g.len()
            && inputs.state.len() == n_seqs * shape.state_row();
        if !sizes_ok {
            return Err(Error::Shape(format!("inputs do not match {shape:?}")));
        }
        let ctx = Context::new(16)?;
        let c = ctx.as_ptr();
        let i = |x: usize| x as i64;
        let f = size_of::<f32>();
        let d = shape.state_row();
        let cells = HEAD + n_seqs + TAIL;
        let groups = shape.written();
        let fused_w = s_v * (2 * h_k + h_v) + PAD;
        // `c` is a live no_alloc context with room for these tensors and a graph; the views
        // stay inside their base tensors, the shapes satisfy ggml_gated_delta_net's asserts
        // (checked above), and every returned pointer is checked before use. The fields written
        // after ggml_gated_delta_net are the ones the patched API writes (see the top of this
        // file), set before anything is allocated.
        // SAFETY: as just described.
        let (bases, cache, out, graph) = unsafe {
            let new4 = |a, b, cc, dd| sys::ggml_new_tensor_4d(c, sys::GGML_TYPE_F32, a, b, cc, dd);
            let (q, k, v, qkv_bases) = match layout {
                QkvLayout::Contiguous => {
                    let q = new4(i(s_v), i(h_k), i(n_tokens), i(n_seqs));
                    let k = new4(i(s_v), i(h_k), i(n_tokens), i(n_seqs));
                    let v = new4(i(s_v), i(h_v), i(n_tokens), i(n_seqs));
                    (q, k, v, vec![q, k, v])
                }
                QkvLayout::Permuted => {
                    let qb = new4(i(s_v), i(n_tokens), i(h_k), i(n_seqs));
                    let kb = new4(i(s_v), i(n_tokens), i(h_k), i(n_seqs));
                    let vb = new4(i(s_v), i(n_tokens), i(h_v), i(n_seqs));
                    non_null(qb, "ggml_new_tensor_4d")?;
                    non_null(kb, "ggml_new_tensor_4d")?;
                    non_null(vb, "ggml_new_tensor_4d")?;
                    let p = |t| sys::ggml_permute(c, t, 0, 2, 1, 3);
                    (p(qb), p(kb), p(vb), vec![qb, kb, vb])
                }
                QkvLayout::Fused => {
                    let b = non_null(
                        sys::ggml_new_tensor_3d(
                            c,
                            sys::GGML_TYPE_F32,
                            i(fused_w),
                            i(n_tokens),
                            i(n_seqs),
                        ),
                        "ggml_new_tensor_3d",
                    )?
                    .as_ptr();
                    let (nb2, nb3) = ((*b).nb[1], (*b).nb[2]);
                    let view = |heads: usize, off: usize| {
                        sys::ggml_view_4d(
                            c,
                            b,
                            i(s_v),
                            i(heads),
                            i(n_tokens),
                            i(n_seqs),
                            s_v * f,
                            nb2,
                            nb3,
                            off * f,
                        )
                    };
                    (
                        view(h_k, 0),
                        view(h_k, s_v * h_k),
                        view(h_v, 2 * s_v * h_k),
                        vec![b],
                    )
                }
            };
            let mut q = non_null(q, "q view")?.as_ptr();
            let mut k = non_null(k, "k view")?.as_ptr();
            if let QkNorm::Graph { eps } = qk_norm {
                // build_gdn_l2_norm: x / sqrt(sum(x²) / S + eps / S) / sqrt(S)
                let n = s_v as f32;
                let l2 = |x| sys::ggml_scale(c, sys::ggml_rms_norm(c, x, eps / n), 1.0 / n.sqrt());
                q = non_null(l2(q), "q l2 norm")?.as_ptr();
                k = non_null(l2(k), "k l2 norm")?.as_ptr();
            }
            let v = non_null(v, "v view")?.as_ptr();
            let g = non_null(new4(1, i(h_v), i(n_tokens), i(n_seqs)), "g")?.as_ptr();
            let beta = non_null(new4(1, i(h_v), i(n_tokens), i(n_seqs)), "beta")?.as_ptr();
            // the cache: `groups` snapshot groups of `cells` rows; rows HEAD.. are written
            let cache = match mode {
                StateMode::Output => None,
                StateMode::InPlace | StateMode::Aliased => Some(non_null(
                    sys::ggml_new_tensor_2d(c, sys::GGML_TYPE_F32, i(d), i(cells * groups)),
                    "ggml_new_tensor_2d",
                )?),
            };
            let (state, state_base) = match (mode, cache) {
                (StateMode::Aliased, Some(cache)) => {
                    let s = sys::ggml_view_4d(
                        c,
                        cache.as_ptr(),
                        i(s_v),
                        i(s_v),
                        i(h_v),
                        i(n_seqs),
                        s_v * f,
                        s_v * s_v * f,
                        d * f,
                        HEAD * d * f,
                    );
                    (non_null(s, "state view")?.as_ptr(), None)
                }
                _ => {
                    let s = non_null(new4(i(s_v), i(s_v), i(h_v), i(n_seqs)), "state")?;
                    (s.as_ptr(), Some(s.as_ptr()))
                }
            };
            let out = non_null(
                sys::ggml_gated_delta_net(c, q, k, v, g, beta, state, i(snapshots)),
                "ggml_gated_delta_net",
            )?
            .as_ptr();
            if bcast == Bcast::Interleaved {
                // ggml_gated_delta_net_set_bcast(out, GGML_GDN_BCAST_INTERLEAVED)
                (*out).op_params[1] = 1;
            }
            if let QkNorm::InOp { eps } = qk_norm {
                // ggml_gated_delta_net_set_qk_l2_norm(out, eps): on in param 2, eps in param 3
                (*out).op_params[2] = 1;
                (*out).op_params[3] = eps.to_bits() as i32;
            }
            if let Some(cache) = cache {
                // ggml_gated_delta_net_state_inplace: snapshots into rows (seq, slot) of the
                // cache; the output keeps the attention scores only
                let dst = sys::ggml_view_3d(
                    c,
                    cache.as_ptr(),
                    i(d),
                    i(n_seqs),
                    i(groups),
                    d * f,
                    cells * d * f,
                    HEAD * d * f,
                );
                (*out).src[6] = non_null(dst, "state_dst view")?.as_ptr();
                (*out).ne[1] = i(n_tokens * n_seqs);
                (*out).nb[2] = (*out).nb[1] * n_tokens * n_seqs;
                (*out).nb[3] = (*out).nb[2];
            }
            ggml::set_name(out, "out");
            let graph = non_null(sys::ggml_new_graph(c), "ggml_new_graph")?;
            sys::ggml_build_forward_expand(graph.as_ptr(), out);
            let mut bases = qkv_bases;
            bases.extend([g, beta]);
            bases.extend(state_base);
            (bases, cache, out, graph)
        };
        let buffer = Buffer::alloc_ctx_tensors(&ctx, device.buffer_type())?;
        // SAFETY: the graph and its tensors are live and allocated.
        unsafe { device.check_graph(graph.as_ptr())? };

        let mut uploads: Vec<Vec<f32>> = match layout {
            QkvLayout::Contiguous => vec![inputs.q.clone(), inputs.k.clone(), inputs.v.clone()],
            QkvLayout::Permuted => vec![
                token_major_to_head_major(&inputs.q, shape, h_k),
                token_major_to_head_major(&inputs.k, shape, h_k),
                token_major_to_head_major(&inputs.v, shape, h_v),
            ],
            QkvLayout::Fused => vec![fuse(shape, inputs, fused_w)],
        };
        uploads.extend([inputs.g.clone(), inputs.beta.clone()]);
        if mode != StateMode::Aliased {
            uploads.push(inputs.state.clone());
        }
        let cache = match cache {
            None => None,
            Some(t) => {
                // distinct values everywhere, the input states in the aliased rows
                let mut init: Vec<f32> = (0..d * cells * groups)
                    .map(|x| (x % 977) as f32 * 1e-3 - 0.4)
                    .collect();
                if mode == StateMode::Aliased {
                    init[HEAD * d..(HEAD + n_seqs) * d].copy_from_slice(&inputs.state);
                }
                uploads.push(init.clone());
                Some((t, init))
            }
        };
        let targets: Vec<*mut sys::ggml_tensor> = bases
            .into_iter()
            .chain(cache.as_ref().map(|(t, _)| t.as_ptr()))
            .collect();
        for (t, data) in targets.into_iter().zip(&uploads) {
            // SAFETY: every tensor is allocated now; upload checks the size.
            unsafe { upload(non_null(t, "tensor")?, data)? };
        }
        Ok(Self {
            backend: Backend::new(device, threads)?,
            _buffer: buffer,
            _ctx: ctx,
            out: non_null(out, "ggml_gated_delta_net")?,
            cache,
            graph,
            shape,
            mode,
        })
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        // SAFETY: the graph and all its tensors are allocated and initialised in `new`.
        unsafe { self.backend.compute(self.graph.as_ptr()) }
    }

    /// The attention scores and the written snapshots.
    pub fn output(&self) -> Output {
        let s = self.shape;
        let n_attn = s.n_seqs * s.n_tokens * s.h_v * s.s_v;
        let n_states = s.written() * s.n_seqs * s.state_row();
        // SAFETY: out is an allocated, contiguous F32 tensor; download reads exactly its bytes.
        let all = unsafe { download(self.out) };
        let attn = all[..n_attn].to_vec();
        let Some((cache, init)) = &self.cache else {
            let states = all[n_attn..n_attn + n_states].to_vec();
            return Output {
                attn,
                states,
                clobbered: 0,
            };
        };
        // SAFETY: as above, for the cache tensor.
        let now = unsafe { download(*cache) };
        let d = s.state_row();
        let cells = HEAD + s.n_seqs + TAIL;
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
                let decay = f64::from(inputs.g[row * h_v + h]).exp();
                let beta = f64::from(inputs.beta[row * h_v + h]);
                let q = &inputs.q[(row * h_k + kh) * s..][..s];
                let k = &inputs.k[(row * h_k + kh) * s..][..s];
                let v = &inputs.v[(row * h_v + h) * s..][..s];
                st.iter_mut().for_each(|x| *x *= decay);
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
