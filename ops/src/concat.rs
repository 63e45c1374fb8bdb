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

use std::ffi::c_void;
use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::Error;
use crate::device::{Backend, Device};
use crate::ggml::{self, Buffer, Context, non_null};
use crate::rng::Rng;
pub use crate::sum_rows::View;

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
    fn random(self, rng: &mut Rng) -> u32 {
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
    let mut rng = Rng::new(seed);
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
    backend: Backend,
    // The tensors live in the context and point into the buffer: both are kept for as long as
    // the raw pointers below are used, and dropped together.
    _buffer: Buffer,
    _ctx: Context,
    srcs: [NonNull<sys::ggml_tensor>; 2],
    out: NonNull<sys::ggml_tensor>,
    graph: NonNull<sys::ggml_cgraph>,
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
        let ctx = Context::new(8)?;
        let f = ty.size();
        // SAFETY: a live no_alloc context with room for these tensors and the graph; each view
        // lies inside its base (is_valid), each permutation is valid, the sizes agree off `dim`
        // (output_shape), and every returned pointer is checked before use.
        let (base_ts, srcs, out, graph) = unsafe {
            let c = ctx.as_ptr();
            let mut base_ts = Vec::with_capacity(2);
            let mut srcs = Vec::with_capacity(2);
            for (v, name) in views.iter().zip(["base0", "base1"]) {
                let (base_t, src) = v.build(c, ty.ggml(), name)?;
                base_ts.push(base_t);
                srcs.push(src);
            }
            let out = non_null(
                sys::ggml_concat(c, srcs[0].as_ptr(), srcs[1].as_ptr(), dim as i32),
                "ggml_concat",
            )?;
            ggml::set_name(out.as_ptr(), "out");
            let graph = non_null(sys::ggml_new_graph(c), "ggml_new_graph")?;
            sys::ggml_build_forward_expand(graph.as_ptr(), out.as_ptr());
            (base_ts, [srcs[0], srcs[1]], out, graph)
        };
        for (src, v) in srcs.iter().zip(views) {
            let l = v.layout();
            // SAFETY: reading fields of a live tensor.
            let (sne, snb) = unsafe { ((*src.as_ptr()).ne, (*src.as_ptr()).nb) };
            if !(0..4).all(|d| sne[d] as usize == l.ne[d] && snb[d] == l.strides[d] * f) {
                return Err(Error::Shape(format!(
                    "ggml's view is ne {sne:?} nb {snb:?}, expected {l:?} (in elements)"
                )));
            }
        }
        let buffer = Buffer::alloc_ctx_tensors(&ctx, device.buffer_type())?;
        // SAFETY: the graph and its tensors are live and allocated.
        unsafe { device.check_graph(graph.as_ptr())? };
        for (t, b) in base_ts.iter().zip(bases) {
            // SAFETY: the base tensor is allocated; the bytes are exactly its size (checked).
            unsafe { upload_bits(*t, ty, b)? };
        }
        Ok(Self {
            backend: Backend::new(device, threads)?,
            _buffer: buffer,
            _ctx: ctx,
            srcs,
            out,
            graph,
            ty,
            len: ne.iter().product(),
        })
    }

    /// Source `k`'s byte strides as ggml sees them (`k` is 0 or 1).
    pub fn source_strides(&self, k: usize) -> [usize; 4] {
        // SAFETY: reading a field of a live tensor.
        unsafe { (*self.srcs[k].as_ptr()).nb }
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        // SAFETY: the graph and all its tensors are allocated and initialised in `on`.
        unsafe { self.backend.compute(self.graph.as_ptr()) }
    }

    /// The output's elements as raw bits, in order (dim 0 fastest).
    pub fn output(&self) -> Vec<u32> {
        let mut bytes = vec![0u8; self.len * self.ty.size()];
        // SAFETY: the output is an allocated, contiguous tensor of exactly these bytes.
        unsafe {
            debug_assert_eq!(sys::ggml_nbytes(self.out.as_ptr()), bytes.len());
            sys::ggml_backend_tensor_get(
                self.out.as_ptr(),
                bytes.as_mut_ptr().cast::<c_void>(),
                0,
                bytes.len(),
            );
        }
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

/// Uploads raw element bits as the whole of tensor `t`.
///
/// # Safety
/// `t` must be an allocated tensor of type `ty`.
unsafe fn upload_bits(t: NonNull<sys::ggml_tensor>, ty: Elem, bits: &[u32]) -> Result<(), Error> {
    let bytes: Vec<u8> = match ty {
        Elem::F32 => bits.iter().flat_map(|b| b.to_le_bytes()).collect(),
        Elem::F16 => bits
            .iter()
            .flat_map(|&b| (b as u16).to_le_bytes())
            .collect(),
    };
    // SAFETY: the caller guarantees t; upload checks that the sizes match.
    unsafe { ggml::upload(t, &bytes) }
}
