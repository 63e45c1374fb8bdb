//! Element-wise binary ops (`ADD`, `SUB`, `MUL`, `DIV`) with one `src1` value per row of
//! `src0`, broadcast along dim 0 (and repeated over dims 1-3 where `src1` is smaller), as a
//! single-op graph on a backend device. That is how MoE layers weight their experts
//! (`[n_embd, n_expert_used, n_tokens] * [1, n_expert_used, n_tokens]`) and how Qwen3-Next gates
//! its shared expert (`[n_embd, n_tokens] * [1, n_tokens]`). Patch 0021 gives the CPU a one-loop
//! path for it.
//!
//! `src0` is read through a [`View`] of a larger base (a sub-box at an offset, optionally
//! permuted as long as dim 0 stays adjacent: ggml's CPU binary ops assert that); `src1` is read
//! through a view that takes one column of a wider tensor, so its rows may be strided too.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::graph::{Builder, OpGraph};
pub use crate::view::View;
use llamacpp_ggml::SplitMix64;

/// The binary ops the tests cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

impl BinaryOp {
    /// Every op of the enum.
    pub const ALL: [BinaryOp; 4] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];

    /// The op in f32: one IEEE operation, so a correct kernel matches it bit for bit.
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
        }
    }
}

/// Where `src1` comes from: column `column` of a contiguous `[width, ne[1], ne[2], ne[3]]`
/// tensor, viewed as `[1, ne[1], ne[2], ne[3]]` (`width` 1: a plain contiguous tensor). Each
/// `ne[d]` must divide `src0`'s size in that dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Src1 {
    /// Sizes of the view (dim 0 is 1).
    pub ne: [usize; 4],
    /// Values per row of the base tensor.
    pub width: usize,
    /// The column taken.
    pub column: usize,
}

impl Src1 {
    /// Values in the base tensor.
    pub fn base_len(&self) -> usize {
        self.width * self.ne[1] * self.ne[2] * self.ne[3]
    }

    /// Index in the base of the value for `src0`'s row `(i1, i2, i3)` (ggml's broadcast: the
    /// index modulo `src1`'s size in each dimension).
    fn index(&self, i1: usize, i2: usize, i3: usize) -> usize {
        let (j1, j2, j3) = (i1 % self.ne[1], i2 % self.ne[2], i3 % self.ne[3]);
        self.column + self.width * (j1 + self.ne[1] * (j2 + self.ne[2] * j3))
    }
}

/// `src0`'s elements, as base indices in the (permuted) view's order (`i0` fastest), each with
/// its row's `(i1, i2, i3)`.
fn elements(view: &View) -> impl Iterator<Item = (usize, [usize; 3])> {
    let l = view.layout();
    (0..l.ne.iter().product::<usize>()).map(move |flat| {
        let i0 = flat % l.ne[0];
        let i1 = flat / l.ne[0] % l.ne[1];
        let i2 = flat / (l.ne[0] * l.ne[1]) % l.ne[2];
        let i3 = flat / (l.ne[0] * l.ne[1] * l.ne[2]);
        let at = l.offset
            + i0 * l.strides[0]
            + i1 * l.strides[1]
            + i2 * l.strides[2]
            + i3 * l.strides[3];
        (at, [i1, i2, i3])
    })
}

/// Random bases for `src0` (the view's elements uniform in [-4, 4), NaN elsewhere, so a kernel
/// that reads outside the view fails) and for `src1` (uniform in [0.5, 1.5): no division by
/// zero; NaN outside the column).
pub fn random_inputs(view: &View, src1: &Src1, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let mut base0 = vec![f32::NAN; view.base_len()];
    for (i, _) in elements(view) {
        base0[i] = 4.0 * rng.next_symmetric();
    }
    let mut base1 = vec![f32::NAN; src1.base_len()];
    for (i, v) in base1.iter_mut().enumerate() {
        if i % src1.width == src1.column {
            *v = 1.0 + 0.5 * rng.next_symmetric();
        }
    }
    (base0, base1)
}

/// The op on every element in f32, in the view's order: what the op's contiguous output holds.
pub fn reference(op: BinaryOp, view: &View, src1: &Src1, base0: &[f32], base1: &[f32]) -> Vec<f32> {
    elements(view)
        .map(|(i, [i1, i2, i3])| op.apply(base0[i], base1[src1.index(i1, i2, i3)]))
        .collect()
}

/// A built `op(permute(view(base0)), view(base1))` graph with its data uploaded, ready to
/// compute.
pub struct Binary {
    graph: OpGraph,
    len: usize,
}

impl Binary {
    /// Builds the graph on `device` (`threads` counts on the CPU only) and uploads both bases.
    /// A permuted view that moves dim 0, or a `src1` that does not broadcast over `src0`, is an
    /// error (ggml would abort the process); a device that rejects the node gives
    /// [`Error::DeviceUnsupported`].
    pub fn on(
        device: Device,
        op: BinaryOp,
        view: &View,
        src1: &Src1,
        bases: (&[f32], &[f32]),
        threads: usize,
    ) -> Result<Self, Error> {
        let (base0, base1) = bases;
        let layout = view.layout();
        let broadcasts = src1.ne[0] == 1
            && (1..4).all(|d| src1.ne[d] > 0 && layout.ne[d].is_multiple_of(src1.ne[d]))
            && src1.column < src1.width;
        if !view.is_valid()
            || !broadcasts
            || base0.len() != view.base_len()
            || base1.len() != src1.base_len()
        {
            return Err(Error::Shape(format!(
                "{view:?} and {src1:?} with {} and {} base values",
                base0.len(),
                base1.len()
            )));
        }
        if layout.strides[0] != 1 && layout.ne[0] > 1 {
            return Err(Error::Unsupported(format!(
                "binary ops need adjacent elements along dim 0: {layout:?}"
            )));
        }
        let mut g = Builder::new(8)?;
        let a = g.input_view(view, sys::GGML_TYPE_F32, "base0", base0)?;
        let [_, s1, s2, s3] = src1.ne;
        let base1_t = g.input(
            sys::GGML_TYPE_F32,
            &[src1.width, s1, s2, s3],
            "base1",
            base1,
        )?;
        let nb1 = g.nb(base1_t);
        let b = g.view(
            base1_t,
            &[1, s1, s2, s3],
            &nb1[1..],
            src1.column * size_of::<f32>(),
        )?;
        let (a, b) = (a.as_ptr(), b.as_ptr());
        // SAFETY: one node over two tensors of this builder; src1 broadcasts over src0 and
        // src0's rows are adjacent (checked above: ggml's asserts hold).
        let out = unsafe {
            g.node("ggml binary op", |c| match op {
                BinaryOp::Add => sys::ggml_add(c, a, b),
                BinaryOp::Sub => sys::ggml_sub(c, a, b),
                BinaryOp::Mul => sys::ggml_mul(c, a, b),
                BinaryOp::Div => sys::ggml_div(c, a, b),
            })?
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            len: layout.ne.iter().product(),
        })
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// The op's output, contiguous, in the view's order.
    pub fn output(&self) -> Vec<f32> {
        let out = self.graph.read_f32(self.graph.out());
        debug_assert_eq!(out.len(), self.len);
        out
    }
}
