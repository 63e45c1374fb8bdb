//! `MUL_MAT_ID`, the MoE expert matmul, as a single-op graph on a backend device (the CPU by
//! default, with the weights in any of its buffer types).
//!
//! `dst[t][s] = W[ids[t][s]] · src1[t][s % ne11]` for every token `t` and slot `s`, with
//! `W` the `[n_expert][m][k]` expert weights (quantized), `src1` F32 and `ids` I32.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::ggml::{self, Buffer, BufferType, Context, non_null};
use crate::graph::{Builder, OpGraph, Tensor};
use llamacpp_ggml::{AlignedBytes, SplitMix64, TensorType};

/// The sizes of one `MUL_MAT_ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Length of a row of weights and of src1 (`ne00 = ne10`, e.g. `n_embd`).
    pub k: usize,
    /// Rows of each expert's matrix (`ne01`, e.g. the expert FFN width).
    pub m: usize,
    /// Number of experts (`ne02`).
    pub n_expert: usize,
    /// Experts used per token (`ids->ne[0]`, top-k).
    pub n_used: usize,
    /// Tokens (`ne12`, `ids->ne[1]`).
    pub n_tokens: usize,
}

/// How src1 is laid out in memory. The values are the same logical `[n_tokens][ne11][k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src1Layout {
    /// `[k, 1, n_tokens]`, contiguous: one row per token, shared by all its slots
    /// (the gate and up projections of a MoE FFN).
    Broadcast,
    /// `[k, n_used, n_tokens]`, contiguous: one row per slot (the down projection).
    PerSlot,
    /// One row per slot, read through a permuted view of a contiguous `[k, n_tokens, n_used]`
    /// tensor: rows of one token are `n_tokens` rows apart.
    Permuted,
    /// One row per token, read through a view whose rows are padded (row stride larger than
    /// `k` floats); the padding holds NaN, so a kernel that reads it fails the comparison.
    Padded,
}

/// Extra floats per row in [`Src1Layout::Padded`].
const PAD: usize = 32;

impl Src1Layout {
    /// src1's `ne[1]`: 1 when broadcast over the slots, `n_used` otherwise.
    pub fn ne11(self, n_used: usize) -> usize {
        match self {
            Self::Broadcast | Self::Padded => 1,
            Self::PerSlot | Self::Permuted => n_used,
        }
    }
}

/// How [`Inputs::random`] routes tokens to experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// `n_used` distinct experts per token, uniformly: about `n_tokens * n_used / n_expert`
    /// rows per expert (what a trained router gives on average).
    Uniform,
    /// `n_used` distinct experts per token, expert `e` chosen with weight `1 / (e + 1)`: a few
    /// experts get many rows, most get a handful or none.
    Skewed,
    /// Like `Skewed`, but each slot after the first repeats the token's first expert with
    /// probability 1/2 (and is otherwise drawn as in `Skewed`, repeats allowed): with enough
    /// slots per token, an expert gets more rows than there are tokens.
    Duplicated,
}

/// The data of one `MUL_MAT_ID`.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// Quantized weights, `n_expert * m` rows of `k` values.
    pub weights: Vec<u8>,
    /// src1 values, logical `[n_tokens][ne11][k]`.
    pub src1: Vec<f32>,
    /// Expert ids, `[n_tokens][n_used]`.
    pub ids: Vec<i32>,
}

impl Inputs {
    /// Random weights (uniform in [-1, 1), quantized to `wtype`), src1 and ids.
    ///
    /// With `distinct_experts = Some(n)`, only `n` experts' weights are drawn and quantized and
    /// the rest repeat them: the same memory traffic for timings, without quantizing billions
    /// of weights.
    pub fn random(
        wtype: TensorType,
        shape: Shape,
        layout: Src1Layout,
        routing: Routing,
        distinct_experts: Option<usize>,
        seed: u64,
    ) -> Result<Self, Error> {
        let mut rng = SplitMix64::new(seed);
        let per_expert = shape.m * shape.k;
        let distinct = distinct_experts
            .unwrap_or(shape.n_expert)
            .clamp(1, shape.n_expert);
        let w: Vec<f32> = (0..distinct * per_expert)
            .map(|_| rng.next_symmetric())
            .collect();
        let wq = quantize(wtype, &w, shape.k)?;
        let expert_bytes = wq.len() / distinct;
        let mut weights = Vec::with_capacity(expert_bytes * shape.n_expert);
        for e in 0..shape.n_expert {
            let d = e % distinct;
            weights.extend_from_slice(&wq[d * expert_bytes..(d + 1) * expert_bytes]);
        }
        let ne11 = layout.ne11(shape.n_used);
        let src1 = (0..shape.n_tokens * ne11 * shape.k)
            .map(|_| rng.next_symmetric())
            .collect();
        let ids = route(&mut rng, shape, routing);
        Ok(Self { weights, src1, ids })
    }

    /// Rows each expert gets: `counts[e]` is the number of (token, slot) pairs naming `e`.
    pub fn rows_per_expert(&self, n_expert: usize) -> Vec<usize> {
        let mut counts = vec![0; n_expert];
        for &e in &self.ids {
            counts[e as usize] += 1;
        }
        counts
    }
}

fn route(rng: &mut SplitMix64, shape: Shape, routing: Routing) -> Vec<i32> {
    let Shape {
        n_expert,
        n_used,
        n_tokens,
        ..
    } = shape;
    assert!(n_used <= n_expert, "top-{n_used} of {n_expert} experts");
    // cumulative weights of the skewed distribution
    let cdf: Vec<f64> = (0..n_expert)
        .scan(0.0, |acc, e| {
            *acc += 1.0 / (e as f64 + 1.0);
            Some(*acc)
        })
        .collect();
    let mut ids = Vec::with_capacity(n_tokens * n_used);
    for _ in 0..n_tokens {
        let token = ids.len();
        for s in 0..n_used {
            let chosen = &ids[token..];
            if routing == Routing::Duplicated && s > 0 {
                let e = if rng.next_below(2) == 0 {
                    chosen[0]
                } else {
                    skewed(rng, &cdf)
                };
                ids.push(e);
                continue;
            }
            let e = loop {
                let e = match routing {
                    Routing::Uniform => rng.next_below(n_expert) as i32,
                    Routing::Skewed | Routing::Duplicated => skewed(rng, &cdf),
                };
                if !chosen.contains(&e) {
                    break e;
                }
            };
            ids.push(e);
        }
    }
    ids
}

/// An expert drawn with the weights whose cumulative sums are `cdf`.
fn skewed(rng: &mut SplitMix64, cdf: &[f64]) -> i32 {
    let x = rng.next_f64() * cdf[cdf.len() - 1];
    cdf.partition_point(|&c| c <= x).min(cdf.len() - 1) as i32
}

/// A built `MUL_MAT_ID` graph with its data uploaded, ready to compute (repeatedly).
pub struct MulMatId {
    graph: OpGraph,
    weights: Tensor,
    shape: Shape,
}

impl MulMatId {
    /// Builds the graph: the weights in a buffer of type `weight_buffer` (the CPU's
    /// `CPU_REPACK` type to test the repacked kernels), src1, ids and dst in a plain CPU
    /// buffer, computed with `threads` threads.
    pub fn new(
        wtype: TensorType,
        shape: Shape,
        layout: Src1Layout,
        inputs: &Inputs,
        weight_buffer: BufferType,
        threads: usize,
    ) -> Result<Self, Error> {
        Self::build(
            Device::cpu(),
            weight_buffer,
            wtype,
            shape,
            layout,
            inputs,
            threads,
        )
    }

    /// Builds the graph on `device`, every tensor in the device's buffer type (`threads`
    /// counts on the CPU only). Fails with [`Error::DeviceUnsupported`] when the device
    /// rejects the op as built.
    pub fn on(
        device: Device,
        wtype: TensorType,
        shape: Shape,
        layout: Src1Layout,
        inputs: &Inputs,
        threads: usize,
    ) -> Result<Self, Error> {
        let buft = device.buffer_type();
        Self::build(device, buft, wtype, shape, layout, inputs, threads)
    }

    fn build(
        device: Device,
        weight_buffer: BufferType,
        wtype: TensorType,
        shape: Shape,
        layout: Src1Layout,
        inputs: &Inputs,
        threads: usize,
    ) -> Result<Self, Error> {
        let Shape {
            k,
            m,
            n_expert,
            n_used,
            n_tokens,
        } = shape;
        let ne11 = layout.ne11(n_used);
        let sizes_ok = inputs.weights.len() == n_expert * m * wtype.row_bytes(k as u64) as usize
            && inputs.src1.len() == n_tokens * ne11 * k
            && inputs.ids.len() == n_tokens * n_used
            && n_used > 0
            && n_used.is_multiple_of(ne11)
            && inputs
                .ids
                .iter()
                .all(|&e| (0..n_expert as i32).contains(&e));
        if !sizes_ok {
            return Err(Error::Shape(format!(
                "inputs do not match {shape:?} with {layout:?}"
            )));
        }
        let f32_t = sys::GGML_TYPE_F32;
        let src1_mem = src1_memory_order(layout, shape, &inputs.src1);
        let mut g = Builder::new(8)?;
        let weights = g.input_in(
            weight_buffer,
            wtype.ggml(),
            &[k, m, n_expert],
            "experts",
            &inputs.weights,
        )?;
        let src1 = match layout {
            Src1Layout::Broadcast | Src1Layout::PerSlot => {
                g.input(f32_t, &[k, ne11, n_tokens], "src1", &src1_mem)?
            }
            Src1Layout::Permuted => {
                let b = g.input(f32_t, &[k, n_tokens, ne11], "src1", &src1_mem)?;
                g.permute(b, [0, 2, 1, 3])?
            }
            Src1Layout::Padded => {
                let b = g.input(f32_t, &[k + PAD, ne11, n_tokens], "src1", &src1_mem)?;
                let nb = g.nb(b);
                g.view(b, &[k, ne11, n_tokens], &nb[1..3], 0)?
            }
        };
        let ids = g.input(sys::GGML_TYPE_I32, &[n_used, n_tokens], "ids", &inputs.ids)?;
        // SAFETY: one node over three tensors of this builder whose shapes satisfy
        // ggml_mul_mat_id's asserts (k matches, ids->ne[1] == n_tokens, n_used % ne11 == 0) and
        // whose ids name existing experts (checked above).
        let out = unsafe {
            g.node("ggml_mul_mat_id", |c| {
                sys::ggml_mul_mat_id(c, weights.as_ptr(), src1.as_ptr(), ids.as_ptr())
            })?
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            weights,
            shape,
        })
    }

    /// The name of the buffer type the weights were allocated in.
    pub fn weight_buffer_name(&self) -> String {
        self.graph.buffer_type_name(self.weights)
    }

    /// Whether the weights were repacked: they sit in the `CPU_REPACK` buffer and the buffer
    /// chose a repacked layout for them (it records that in the tensor's `extra`; without
    /// one, the CPU backend would run its generic kernels instead).
    pub fn weight_repacked(&self) -> bool {
        self.weight_buffer_name() == ggml::REPACK_BUFFER_NAME && self.graph.has_extra(self.weights)
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// dst, `[n_tokens][n_used][m]`.
    pub fn output(&self) -> Vec<f32> {
        let out = self.graph.read_f32(self.graph.out());
        debug_assert_eq!(
            out.len(),
            self.shape.n_tokens * self.shape.n_used * self.shape.m
        );
        out
    }
}

/// src1's logical `[n_tokens][ne11][k]` values in the memory order of `layout`'s base tensor.
fn src1_memory_order(layout: Src1Layout, shape: Shape, src1: &[f32]) -> Vec<f32> {
    let (k, nt) = (shape.k, shape.n_tokens);
    let ne11 = layout.ne11(shape.n_used);
    match layout {
        Src1Layout::Broadcast | Src1Layout::PerSlot => src1.to_vec(),
        Src1Layout::Permuted => {
            // base [k, n_tokens, ne11]: row (s, t) at (s * n_tokens + t) * k
            let mut mem = vec![0f32; src1.len()];
            for t in 0..nt {
                for s in 0..ne11 {
                    let from = (t * ne11 + s) * k;
                    let to = (s * nt + t) * k;
                    mem[to..to + k].copy_from_slice(&src1[from..from + k]);
                }
            }
            mem
        }
        Src1Layout::Padded => src1
            .chunks(k)
            .flat_map(|row| row.iter().copied().chain([f32::NAN; PAD]))
            .collect(),
    }
}

/// dst computed in Rust: the weights dequantized with the type's `to_float`, dot products
/// accumulated in f64.
pub fn reference(
    wtype: TensorType,
    shape: Shape,
    layout: Src1Layout,
    inputs: &Inputs,
) -> Result<Vec<f32>, Error> {
    let Shape {
        k,
        m,
        n_used,
        n_tokens,
        ..
    } = shape;
    let ne11 = layout.ne11(n_used);
    let w = dequantize(wtype, &inputs.weights, k)?;
    let mut out = vec![0f32; n_tokens * n_used * m];
    for t in 0..n_tokens {
        for s in 0..n_used {
            let e = inputs.ids[t * n_used + s] as usize;
            let x = &inputs.src1[(t * ne11 + s % ne11) * k..][..k];
            let dst = &mut out[(t * n_used + s) * m..][..m];
            for (r, d) in dst.iter_mut().enumerate() {
                let row = &w[(e * m + r) * k..][..k];
                let dot: f64 = row
                    .iter()
                    .zip(x)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                *d = dot as f32;
            }
        }
    }
    Ok(out)
}

/// The ggml types the CPU's repack buffer repacks in this build on this machine (for
/// `MUL_MAT_ID` weights of `k` columns and `m` rows; `m` a multiple of 16 suits every layout).
pub fn repacked_types(k: usize, m: usize) -> Result<Vec<TensorType>, Error> {
    let Some(repack) = BufferType::cpu_repack() else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for ty in CANDIDATE_TYPES {
        let ctx = Context::new(1)?;
        // SAFETY: a live no_alloc context with room for one tensor; the pointer is checked.
        let t = unsafe { sys::ggml_new_tensor_3d(ctx.as_ptr(), ty.ggml(), k as i64, m as i64, 2) };
        let t = non_null(t, "ggml_new_tensor_3d")?;
        let _buf = Buffer::alloc_ctx_tensors(&ctx, repack)?;
        // SAFETY: the tensor is live (its context is) and allocated; `extra` is set by the
        // repack buffer's init_tensor to the chosen layout, or null when it has none.
        if unsafe { !(*t.as_ptr()).extra.is_null() } {
            found.push(ty);
        }
    }
    Ok(found)
}

/// Every type the pinned repack code has a layout for on some architecture.
const CANDIDATE_TYPES: [TensorType; 9] = [
    TensorType::Q1_0,
    TensorType::Q4_0,
    TensorType::Q2_K,
    TensorType::Q4_K,
    TensorType::Q5_K,
    TensorType::Q6_K,
    TensorType::Q8_0,
    TensorType::IQ4_NL,
    TensorType::MXFP4,
];

/// Quantizes `src` (rows of `n_per_row` values) with ggml's reference quantizer.
fn quantize(ty: TensorType, src: &[f32], n_per_row: usize) -> Result<Vec<u8>, Error> {
    let mut out = AlignedBytes::default();
    llamacpp_ggml::encode(ty, src, n_per_row, &mut out).map_err(ggml_error)?;
    Ok(out.as_bytes().to_vec())
}

/// Dequantizes whole rows of `n_per_row` values of `ty` with the type's converter.
fn dequantize(ty: TensorType, data: &[u8], n_per_row: usize) -> Result<Vec<f32>, Error> {
    let row = ty.row_bytes(n_per_row as u64) as usize;
    if row == 0 || !data.len().is_multiple_of(row) {
        return Err(Error::Shape(format!(
            "{} bytes are not whole rows of {n_per_row} {ty}",
            data.len()
        )));
    }
    llamacpp_ggml::decode(ty, data, data.len() / row * n_per_row).map_err(ggml_error)
}

fn ggml_error(e: llamacpp_ggml::Error) -> Error {
    match e {
        llamacpp_ggml::Error::NeedsImportanceMatrix(_) | llamacpp_ggml::Error::NoConverter(_) => {
            Error::Unsupported(e.to_string())
        }
        other => Error::Shape(other.to_string()),
    }
}
