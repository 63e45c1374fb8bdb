//! Element-wise unary ops (`GGML_OP_UNARY`: sigmoid, SiLU, ...) as a single-op graph on a backend
//! device, with the input read through a view of a larger base tensor ([`View`]: a sub-box at an
//! offset, then optionally permuted). Qwen3-Next applies a sigmoid to per-head slices of a wider
//! projection (rows with a gap between them); patch 0011 lets CUDA do that without a copy.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::graph::{Builder, OpGraph, Tensor};
pub use crate::view::{Layout, View};
use llamacpp_ggml::SplitMix64;

/// The unary ops the tests cover: the ones on Qwen3-Next's path and a few neighbours sharing
/// their kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `x / (1 + e^-x)`.
    Silu,
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// `log(1 + e^x)`, and `x` itself above 20 (where ggml's kernels switch).
    Softplus,
}

impl UnaryOp {
    /// Every op of the enum.
    pub const ALL: [UnaryOp; 5] = [
        UnaryOp::Sigmoid,
        UnaryOp::Silu,
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Softplus,
    ];

    fn ggml(self) -> sys::ggml_unary_op {
        match self {
            UnaryOp::Sigmoid => sys::GGML_UNARY_OP_SIGMOID,
            UnaryOp::Silu => sys::GGML_UNARY_OP_SILU,
            UnaryOp::Neg => sys::GGML_UNARY_OP_NEG,
            UnaryOp::Exp => sys::GGML_UNARY_OP_EXP,
            UnaryOp::Softplus => sys::GGML_UNARY_OP_SOFTPLUS,
        }
    }

    /// The op in f64.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Silu => x / (1.0 + (-x).exp()),
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Softplus if x > 20.0 => x,
            UnaryOp::Softplus => x.exp().ln_1p(),
        }
    }
}

/// Base indices of the view's elements, in the permuted view's index order (`i0` fastest).
fn indices(view: &View) -> impl Iterator<Item = usize> {
    let l = view.layout();
    (0..l.ne.iter().product::<usize>()).map(move |flat| {
        let i0 = flat % l.ne[0];
        let i1 = flat / l.ne[0] % l.ne[1];
        let i2 = flat / (l.ne[0] * l.ne[1]) % l.ne[2];
        let i3 = flat / (l.ne[0] * l.ne[1] * l.ne[2]);
        l.offset + i0 * l.strides[0] + i1 * l.strides[1] + i2 * l.strides[2] + i3 * l.strides[3]
    })
}

/// Base values for `view`: the view's elements uniform in [-24, 24) (both sides of softplus's
/// switch at 20), NaN everywhere else, so a kernel reading outside the view fails the comparison.
pub fn random_base(view: &View, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut base = vec![f32::NAN; view.base_len()];
    for i in indices(view) {
        base[i] = 24.0 * rng.next_symmetric();
    }
    base
}

/// The op applied in f64 to every element of the view, in the permuted view's index order
/// (`i0` fastest): the reference, and the layout of the op's contiguous output.
pub fn reference(op: UnaryOp, view: &View, base: &[f32]) -> Vec<f32> {
    indices(view)
        .map(|i| op.apply(f64::from(base[i])) as f32)
        .collect()
}

/// A built `unary(permute(view(base)))` graph with its base data uploaded, ready to compute.
pub struct Unary {
    graph: OpGraph,
    src0: Tensor,
    len: usize,
}

impl Unary {
    /// Builds the graph on `device` (`threads` counts on the CPU only) and uploads `base`
    /// (`view.base_len()` values). Checks that ggml's view has the sizes and strides
    /// [`View::layout`] predicts, so the reference reads the same elements; fails with
    /// [`Error::DeviceUnsupported`] when the device rejects the node.
    pub fn on(
        device: Device,
        op: UnaryOp,
        view: &View,
        base: &[f32],
        threads: usize,
    ) -> Result<Self, Error> {
        if !view.is_valid() || base.len() != view.base_len() {
            return Err(Error::Shape(format!(
                "{view:?} with {} base values",
                base.len()
            )));
        }
        let layout = view.layout();
        if layout.strides[0] != 1 && layout.ne[0] > 1 {
            // ggml_unary asserts that each row's elements are adjacent (a process abort)
            return Err(Error::Unsupported(format!(
                "a unary op needs adjacent elements along dim 0: {layout:?}"
            )));
        }
        let mut g = Builder::new(6)?;
        let src0 = g.input_view(view, sys::GGML_TYPE_F32, "base", base)?;
        // SAFETY: one node over a tensor of this builder whose rows are adjacent (checked above).
        let out = unsafe {
            g.node("ggml_unary", |c| {
                sys::ggml_unary(c, src0.as_ptr(), op.ggml())
            })?
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            src0,
            len: layout.ne.iter().product(),
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

    /// The op's output, contiguous, in the permuted view's index order.
    pub fn output(&self) -> Vec<f32> {
        let out = self.graph.read_f32(self.graph.out());
        debug_assert_eq!(out.len(), self.len);
        out
    }
}
