//! `CONCAT` (two tensors joined along one dimension) as a single-op graph on a backend device,
//! each source read through a [`View`] of its own base tensor: a sub-box at an offset, then
//! optionally permuted. Qwen3-Next's conv input is the case the kernels are tuned for: the conv
//! state `[d_conv - 1, channels, n_seqs]` joined along dim 0 with the new tokens, a transposed
//! view `[n_tokens, channels, n_seqs]` whose dim 1 is the contiguous one.
//!
//! A concat copies values, so the check is exact: the output's bits must equal the source
//! elements' bits. Values are handled as raw bits (`u32` holding an F32, or an F16 in its low
//! 16 bits); the generated ones are finite, and every base element outside its view holds a
//! NaN no generated value can equal, so a kernel that reads outside a view fails.

use llamacpp_sys as sys;

use crate::Error;
use crate::device::Device;
use crate::graph::{Builder, OpGraph, Tensor};
pub use crate::view::View;
use llamacpp_ggml::SplitMix64;

/// The element type of both sources and the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// `GGML_TYPE_F32`: 4-byte elements.
    F32,
    /// `GGML_TYPE_F16`: 2-byte elements (the low 16 bits of each `u32`).
    F16,
}

impl Elem {
    fn ggml(self) -> sys::ggml_type {
        match self {
            Self::F32 => sys::GGML_TYPE_F32,
            Self::F16 => sys::GGML_TYPE_F16,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }

    /// The value written outside the views: a quiet NaN.
    fn outside(self) -> u32 {
        match self {
            Self::F32 => 0x7fc0_0bad,
            Self::F16 => 0x7e01,
        }
    }

    /// A random finite value: the exponent's top bit is cleared, which also keeps it apart
    /// from [`Elem::outside`].
    fn random(self, rng: &mut SplitMix64) -> u32 {
        let bits = rng.next_u64() as u32;
        match self {
            Self::F32 => bits & !(1 << 30),
            Self::F16 => bits & 0xffff & !(1 << 14),
        }
    }
}

/// The output's sizes: the sources' (permuted) sizes, which must agree on every dimension but
/// `dim`, with `dim`'s added.
pub fn output_shape(dim: usize, views: [&View; 2]) -> Result<[usize; 4], Error> {
    let [a, b] = views.map(|v| v.layout().ne);
    if dim > 3 || (0..4).any(|d| d != dim && a[d] != b[d]) {
        return Err(Error::Shape(format!(
            "concat along dim {dim} of sizes {a:?} and {b:?}"
        )));
    }
    let mut ne = a;
    ne[dim] += b[dim];
    Ok(ne)
}

/// Random base values for `view` (see the module's notes).
pub fn random_base(ty: Elem, view: &View, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    let mut base = vec![ty.outside(); view.base_len()];
    for i in view.layout().indices() {
        base[i] = ty.random(&mut rng);
    }
    base
}

/// The concatenation, element by element, in the output's order (dim 0 fastest).
pub fn reference(dim: usize, views: [&View; 2], bases: [&[u32]; 2]) -> Result<Vec<u32>, Error> {
    let ne = output_shape(dim, views)?;
    let [l0, l1] = views.map(View::layout);
    let mut out = Vec::with_capacity(ne.iter().product());
    for i3 in 0..ne[3] {
        for i2 in 0..ne[2] {
            for i1 in 0..ne[1] {
                for i0 in 0..ne[0] {
                    let mut i = [i0, i1, i2, i3];
                    let (l, base) = if i[dim] < l0.ne[dim] {
                        (&l0, bases[0])
                    } else {
                        i[dim] -= l0.ne[dim];
                        (&l1, bases[1])
                    };
                    let at = l.offset + (0..4).map(|d| i[d] * l.strides[d]).sum::<usize>();
                    out.push(base[at]);
                }
            }
        }
    }
    Ok(out)
}

/// A built `concat(permute(view(base0)), permute(view(base1)), dim)` graph with its data
/// uploaded, ready to compute.
pub struct Concat {
    graph: OpGraph,
    srcs: [Tensor; 2],
    ty: Elem,
    len: usize,
}

impl Concat {
    /// Builds the graph on `device` (`threads` counts on the CPU only) and uploads the bases
    /// (`views[i].base_len()` values each). Checks the sizes first (ggml would abort on a
    /// mismatch) and that ggml's views have the strides [`View::layout`] predicts. A device
    /// that rejects the node gives [`Error::DeviceUnsupported`].
    pub fn on(
        device: Device,
        ty: Elem,
        dim: usize,
        views: [&View; 2],
        bases: [&[u32]; 2],
        threads: usize,
    ) -> Result<Self, Error> {
        let ne = output_shape(dim, views)?;
        for (v, b) in views.iter().zip(bases) {
            if !v.is_valid() || b.len() != v.base_len() {
                return Err(Error::Shape(format!("{v:?} with {} base values", b.len())));
            }
        }
        let bytes = bases.map(|b| to_bytes(ty, b));
        let mut g = Builder::new(8)?;
        let a = g.input_view(views[0], ty.ggml(), "base0", &bytes[0])?;
        let b = g.input_view(views[1], ty.ggml(), "base1", &bytes[1])?;
        // SAFETY: one node over two tensors of this builder of the same type whose sizes agree
        // off `dim`, a dimension below 4 (output_shape checked both).
        let out = unsafe {
            g.node("ggml_concat", |c| {
                sys::ggml_concat(c, a.as_ptr(), b.as_ptr(), dim as i32)
            })?
        };
        Ok(Self {
            graph: g.finish(out, device, threads)?,
            srcs: [a, b],
            ty,
            len: ne.iter().product(),
        })
    }

    /// Source `k`'s byte strides as ggml sees them (`k` is 0 or 1).
    pub fn source_strides(&self, k: usize) -> [usize; 4] {
        self.graph.nb(self.srcs[k])
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        self.graph.compute()
    }

    /// The output's elements as raw bits, in order (dim 0 fastest).
    pub fn output(&self) -> Vec<u32> {
        let bytes = self.graph.read(self.graph.out());
        debug_assert_eq!(bytes.len(), self.len * self.ty.size());
        match self.ty {
            Elem::F32 => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Elem::F16 => bytes
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        }
    }
}

/// Raw element bits as the bytes of a tensor of type `ty`.
fn to_bytes(ty: Elem, bits: &[u32]) -> Vec<u8> {
    match ty {
        Elem::F32 => bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
        Elem::F16 => bits
            .iter()
            .flat_map(|&b| (b as u16).to_le_bytes())
            .collect(),
    }
}
