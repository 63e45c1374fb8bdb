//! `SUM_ROWS` (each output is the sum of one row of `src0`, along dim 0) as a single-op graph
//! on a backend device (the CPU by default), with `src0` read through a view of a larger base tensor: a sub-box at
//! an offset (strided and offset rows), then optionally permuted, which makes dim 0 strided.
//! That last case is how MoE layers sum their experts: `[n_embd, n_expert_used, n_tokens]`
//! permuted to `[n_expert_used, n_embd, n_tokens]`.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::graph::{Builder, OpGraph, Tensor};
pub use crate::view::{Layout, View};
use llamacpp_ggml::SplitMix64;

/// Base values for `view`: the view's elements uniform in [-1, 1) times a scale drawn from
/// 1e-3 .. 1e3 (so that the order of the additions shows in the rounding), NaN everywhere
/// else, so a kernel reading outside the view fails the comparison.
pub fn random_base(view: &View, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut base = vec![f32::NAN; view.base_len()];
    let layout = view.layout();
    for r in 0..layout.rows() {
        for i in layout.row(r) {
            let scale = 10f32.powi(rng.next_below(7) as i32 - 3);
            base[i] = rng.next_symmetric() * scale;
        }
    }
    base
}

/// The sums accumulated in f64 in index order, rounded once to f32: the reference for the
/// NMSE check, and bit for bit what upstream's contiguous kernel computes (it accumulates in
/// double, in the same order).
pub fn reference(view: &View, base: &[f32]) -> Vec<f32> {
    let layout = view.layout();
    (0..layout.rows())
        .map(|r| layout.row(r).fold(0f64, |acc, i| acc + f64::from(base[i])) as f32)
        .collect()
}

/// The sums accumulated in f32 in index order from the row's first element,
/// `((x0 + x1) + x2) + ...`: what a chain of `ADD` nodes over the same values gives.
pub fn sequential_f32(view: &View, base: &[f32]) -> Vec<f32> {
    let layout = view.layout();
    (0..layout.rows())
        .map(|r| {
            let mut it = layout.row(r).map(|i| base[i]);
            let first = it.next().unwrap_or(0.0);
            it.fold(first, |acc, x| acc + x)
        })
        .collect()
}

/// How the graph sums the rows of `src0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One `SUM_ROWS` node.
    SumRows,
    /// What `build_moe_ffn` does without it: one view of `src0` per element of dim 0 (each
    /// `[ne1, ne2, ne3]`, so `src0`'s dim 1 must be contiguous) and `ne0 - 1` `ADD` nodes,
    /// `((v0 + v1) + v2) + ...` (a `CONT` when `ne0` is 1).
    AddChain,
}

/// A built `SUM_ROWS` graph with its base data uploaded, ready to compute.
pub struct SumRows {
    graph: OpGraph,
    src0: Tensor,
    rows: usize,
}

impl SumRows {
    /// Builds `sum_rows(permute(view(base)))` on the CPU backend with `threads` threads and
    /// uploads `base` (`view.base_len()` values). Checks that ggml's view has the sizes and
    /// strides [`View::layout`] predicts, so the reference reads the same elements.
    pub fn new(view: &View, base: &[f32], threads: usize) -> Result<Self, Error> {
        Self::with_method(view, base, threads, Method::SumRows)
    }

    /// Like [`SumRows::new`], summing with `method`.
    pub fn with_method(
        view: &View,
        base: &[f32],
        threads: usize,
        method: Method,
    ) -> Result<Self, Error> {
        Self::on(Device::cpu(), view, base, threads, method)
    }

    /// Like [`SumRows::with_method`], on `device` (`threads` counts on the CPU only). Fails with
    /// [`Error::DeviceUnsupported`] when the device rejects a node of the graph.
    pub fn on(
        device: Device,
        view: &View,
        base: &[f32],
        threads: usize,
        method: Method,
    ) -> Result<Self, Error> {
        let layout = view.layout();
        if method == Method::AddChain && layout.strides[1] != 1 {
            return Err(Error::Unsupported(format!(
                "an ADD chain needs dim 1 contiguous: {layout:?}"
            )));
        }
        if !view.is_valid() || base.len() != view.base_len() {
            return Err(Error::Shape(format!(
                "{view:?} with {} base values",
                base.len()
            )));
        }
        let mut g = Builder::new(6 + 2 * view.ne.iter().max().copied().unwrap_or(0))?;
        let src0 = g.input_view(view, sys::GGML_TYPE_F32, "base", base)?;
        let out = match method {
            // SAFETY: one node over a tensor of this builder; ggml_sum_rows takes any F32 input.
            Method::SumRows => unsafe {
                g.node("ggml_sum_rows", |c| sys::ggml_sum_rows(c, src0.as_ptr()))?
            },
            Method::AddChain => add_chain(&mut g, src0)?,
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            src0,
            rows: layout.rows(),
        })
    }

    /// Whether `src0`'s elements along dim 0 are adjacent (upstream's CPU kernel asserts so).
    pub fn rows_contiguous(&self) -> bool {
        self.graph.nb(self.src0)[0] == size_of::<f32>()
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// The sums, one per row of `src0` (`i1`, then `i2`, then `i3` order).
    pub fn output(&self) -> Vec<f32> {
        let out = self.graph.read_f32(self.graph.out());
        debug_assert_eq!(out.len(), self.rows);
        out
    }
}

/// `src0`'s rows summed by views over dim 0 (each `[ne1, ne2, ne3]`; `src0`'s dim 1 must be
/// contiguous) and a chain of `ADD` nodes (a `CONT` when `ne0` is 1).
fn add_chain(g: &mut Builder<'_>, src0: Tensor) -> Result<Tensor, Error> {
    let (ne, nb) = (g.ne(src0), g.nb(src0));
    let (dims, strides) = ([ne[1], ne[2], ne[3]], [nb[2], nb[3]]);
    let mut sum = g.view(src0, &dims, &strides, 0)?;
    if ne[0] == 1 {
        // SAFETY: one node over a view of this builder.
        return unsafe { g.node("ggml_cont", |c| sys::ggml_cont(c, sum.as_ptr())) };
    }
    for k in 1..ne[0] {
        let next = g.view(src0, &dims, &strides, k * nb[0])?;
        // SAFETY: the ADD of two views of this builder with the same sizes.
        sum = unsafe {
            g.node("ggml_add", |c| {
                sys::ggml_add(c, sum.as_ptr(), next.as_ptr())
            })?
        };
    }
    Ok(sum)
}
