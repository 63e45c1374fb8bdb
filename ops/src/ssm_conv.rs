//! `SSM_CONV` (the depthwise causal convolution of Mamba-style and gated-delta-net layers) as a
//! single-op graph on a backend device. Output `[d_inner, n_t, n_s]`: for channel `c`, token `t`
//! and sequence `s`, the dot product of the convolution kernel's row `c` (`d_conv` taps) with
//! the window `x[t .. t + d_conv, c, s]` of the input `[d_conv - 1 + n_t, d_inner, n_s]`.
//!
//! The input is read through a [`View`] of a larger base tensor. ggml's CPU kernel asserts that
//! each input row is contiguous (dim 0 adjacent, dim 1 packed), so the views that exist are
//! whole rows at an offset with the sequences strided: a range of channels of a wider tensor, or
//! a range of sequences (Qwen3-Next's conv input is the conv state concatenated with the new
//! tokens, one such tensor per layer). Patch 0020 changes the CPU kernel's loop order.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::graph::{Builder, OpGraph, Tensor};
pub use crate::view::View;
use llamacpp_ggml::SplitMix64;

/// The convolution's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Taps of the kernel (Qwen3-Next: 4).
    pub d_conv: usize,
    /// Channels (Qwen3-Next-80B-A3B: 8192).
    pub d_inner: usize,
    /// Tokens per sequence.
    pub n_t: usize,
    /// Sequences.
    pub n_s: usize,
}

impl Shape {
    /// Sizes of the input, `[d_conv - 1 + n_t, d_inner, n_s, 1]`.
    pub fn input(&self) -> [usize; 4] {
        [self.d_conv - 1 + self.n_t, self.d_inner, self.n_s, 1]
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.d_inner * self.n_t * self.n_s
    }
}

/// Random input base values (the view's elements uniform in [-1, 1), NaN everywhere else, so a
/// kernel reading outside the view fails the comparison) and kernel weights (uniform in [-1, 1)).
pub fn random_inputs(shape: &Shape, view: &View, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let mut base = vec![f32::NAN; view.base_len()];
    for i in view.layout().indices() {
        base[i] = rng.next_symmetric();
    }
    let weights = (0..shape.d_conv * shape.d_inner)
        .map(|_| rng.next_symmetric())
        .collect();
    (base, weights)
}

/// The convolution in f64, rounded once to f32, in the output's order (channel fastest).
pub fn reference(shape: &Shape, view: &View, base: &[f32], weights: &[f32]) -> Vec<f32> {
    let l = view.layout();
    let mut out = Vec::with_capacity(shape.outputs());
    for s in 0..shape.n_s {
        for t in 0..shape.n_t {
            for c in 0..shape.d_inner {
                let sum: f64 = (0..shape.d_conv)
                    .map(|k| {
                        let x = base[l.offset
                            + (t + k) * l.strides[0]
                            + c * l.strides[1]
                            + s * l.strides[2]];
                        f64::from(x) * f64::from(weights[c * shape.d_conv + k])
                    })
                    .sum();
                out.push(sum as f32);
            }
        }
    }
    out
}

/// A built `ssm_conv(view(base), weights)` graph with its data uploaded, ready to compute.
pub struct SsmConv {
    graph: OpGraph,
    src0: Tensor,
    len: usize,
}

impl SsmConv {
    /// Builds the graph on `device` (`threads` counts on the CPU only) and uploads `base`
    /// (`view.base_len()` values) and `weights` (`d_conv * d_inner`). The view must not be
    /// permuted and must have `shape.input()`'s sizes with whole, packed rows (what ggml's CPU
    /// kernel asserts: anything else is [`Error::Unsupported`], not a process abort); checks
    /// that ggml's view has the strides [`View::layout`] predicts. A device that rejects the
    /// node gives [`Error::DeviceUnsupported`].
    pub fn on(
        device: Device,
        shape: &Shape,
        view: &View,
        base: &[f32],
        weights: &[f32],
        threads: usize,
    ) -> Result<Self, Error> {
        if !view.is_valid()
            || view.ne != shape.input()
            || base.len() != view.base_len()
            || weights.len() != shape.d_conv * shape.d_inner
            || shape.d_conv == 0
        {
            return Err(Error::Shape(format!(
                "{shape:?} from {view:?} with {} base values and {} weights",
                base.len(),
                weights.len()
            )));
        }
        if view.perm != [0, 1, 2, 3] || view.base[0] != view.ne[0] {
            return Err(Error::Unsupported(format!(
                "ssm_conv needs whole, packed input rows: {view:?}"
            )));
        }
        let layout = view.layout();
        let f = size_of::<f32>();
        let mut g = Builder::new(6)?;
        let base_t = g.input(sys::GGML_TYPE_F32, &view.base, "base", base)?;
        let weights_t = g.input(
            sys::GGML_TYPE_F32,
            &[shape.d_conv, shape.d_inner],
            "weights",
            weights,
        )?;
        let nb = g.nb(base_t);
        let src0 = g.view(base_t, &view.ne[..3], &nb[1..3], layout.offset * f)?;
        let (ne, nb) = (g.ne(src0), g.nb(src0));
        if !(0..3).all(|d| ne[d] == layout.ne[d] && nb[d] == layout.strides[d] * f) {
            return Err(Error::Shape(format!(
                "ggml's view is ne {ne:?} nb {nb:?}, expected {layout:?} (in floats)"
            )));
        }
        // SAFETY: one node over two tensors of this builder with ssm_conv's sizes (checked
        // above, so its asserts hold).
        let out = unsafe {
            g.node("ggml_ssm_conv", |c| {
                sys::ggml_ssm_conv(c, src0.as_ptr(), weights_t.as_ptr())
            })?
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            src0,
            len: shape.outputs(),
        })
    }

    /// Whether the input is one contiguous block (no gaps, no offset from its base's order).
    pub fn input_contiguous(&self) -> bool {
        self.graph.is_contiguous(self.src0)
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// The op's output `[d_inner, n_t, n_s]`, contiguous.
    pub fn output(&self) -> Vec<f32> {
        let out = self.graph.read_f32(self.graph.out());
        debug_assert_eq!(out.len(), self.len);
        out
    }
}
