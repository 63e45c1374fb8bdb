//! `SUM_ROWS` (each output is the sum of one row of `src0`, along dim 0) as a single-op graph
//! on a backend device (the CPU by default), with `src0` read through a view of a larger base tensor: a sub-box at
//! an offset (strided and offset rows), then optionally permuted, which makes dim 0 strided.
//! That last case is how MoE layers sum their experts: `[n_embd, n_expert_used, n_tokens]`
//! permuted to `[n_expert_used, n_embd, n_tokens]`.

use std::ptr::NonNull;

use llamacpp_sys as sys;

use crate::Error;
use crate::device::{Backend, Device};
use crate::ggml::{self, Buffer, Context, download, non_null, upload};
use crate::rng::Rng;

/// Where `src0` sits in its base tensor: the box `start .. start + ne` of a contiguous `base`
/// (all in the base's dimension order), then `ggml_permute(view, perm[0], .., perm[3])`, which
/// moves the view's axis `i` to position `perm[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Sizes of the contiguous base tensor.
    pub base: [usize; 4],
    /// Sizes of the view, before the permutation.
    pub ne: [usize; 4],
    /// First element of the view in each dimension of the base.
    pub start: [usize; 4],
    /// The permutation applied to the view (`[0, 1, 2, 3]`: none).
    pub perm: [usize; 4],
}

impl View {
    /// The whole of a contiguous `[ne0, ne1, ne2, ne3]` tensor.
    pub fn contiguous(ne: [usize; 4]) -> Self {
        Self {
            base: ne,
            ne,
            start: [0; 4],
            perm: [0, 1, 2, 3],
        }
    }

    /// The MoE expert sum's input: the first `n_used` experts of a contiguous
    /// `[n_embd, n_expert, n_tokens]` tensor, with embedding and expert axes swapped.
    pub fn moe(n_embd: usize, n_expert: usize, n_used: usize, n_tokens: usize) -> Self {
        Self {
            base: [n_embd, n_expert, n_tokens, 1],
            ne: [n_embd, n_used, n_tokens, 1],
            start: [0; 4],
            perm: [1, 0, 2, 3],
        }
    }

    /// Whether the box lies inside the base and `perm` is a permutation.
    pub fn is_valid(&self) -> bool {
        let mut seen = [false; 4];
        for &p in &self.perm {
            if p > 3 || seen[p] {
                return false;
            }
            seen[p] = true;
        }
        (0..4).all(|d| self.ne[d] > 0 && self.start[d] + self.ne[d] <= self.base[d])
    }

    /// Values in the base tensor.
    pub fn base_len(&self) -> usize {
        self.base.iter().product()
    }

    /// `src0`'s sizes and strides (in base elements) after the permutation, and the index of
    /// its first element in the base.
    pub fn layout(&self) -> Layout {
        let b = self.base;
        let base_strides = [1, b[0], b[0] * b[1], b[0] * b[1] * b[2]];
        let mut ne = [0; 4];
        let mut strides = [0; 4];
        for i in 0..4 {
            ne[self.perm[i]] = self.ne[i];
            strides[self.perm[i]] = base_strides[i];
        }
        let offset = (0..4).map(|d| self.start[d] * base_strides[d]).sum();
        Layout {
            ne,
            strides,
            offset,
        }
    }
}

impl View {
    /// Builds a contiguous base tensor of type `ty` named `name` and this view of it (the box at
    /// its offset, then permuted) in `c`; returns both.
    ///
    /// # Safety
    /// `c` must be a live no_alloc context with room for three more tensors, and the view valid
    /// ([`View::is_valid`]).
    pub(crate) unsafe fn build(
        &self,
        c: *mut sys::ggml_context,
        ty: sys::ggml_type,
        name: &str,
    ) -> Result<(NonNull<sys::ggml_tensor>, NonNull<sys::ggml_tensor>), Error> {
        let [b0, b1, b2, b3] = self.base.map(|x| x as i64);
        let [v0, v1, v2, v3] = self.ne.map(|x| x as i64);
        let [p0, p1, p2, p3] = self.perm.map(|x| x as i32);
        // SAFETY: the caller guarantees the context and a valid view, so the box lies inside the
        // base and the permutation is one; every returned pointer is checked before use.
        unsafe {
            let base = non_null(
                sys::ggml_new_tensor_4d(c, ty, b0, b1, b2, b3),
                "ggml_new_tensor_4d",
            )?;
            ggml::set_name(base.as_ptr(), name);
            let nb = (*base.as_ptr()).nb;
            let offset = self.layout().offset * sys::ggml_type_size(ty);
            let v = non_null(
                sys::ggml_view_4d(
                    c,
                    base.as_ptr(),
                    v0,
                    v1,
                    v2,
                    v3,
                    nb[1],
                    nb[2],
                    nb[3],
                    offset,
                ),
                "ggml_view_4d",
            )?;
            let view = non_null(
                sys::ggml_permute(c, v.as_ptr(), p0, p1, p2, p3),
                "ggml_permute",
            )?;
            Ok((base, view))
        }
    }
}

/// `src0` as the kernel sees it: element `(i0, i1, i2, i3)` is base element
/// `offset + Σ i_d * strides[d]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Sizes.
    pub ne: [usize; 4],
    /// Strides, in elements of the base.
    pub strides: [usize; 4],
    /// Index of element `(0, 0, 0, 0)` in the base.
    pub offset: usize,
}

impl Layout {
    /// Number of outputs (rows of `src0`).
    pub fn rows(&self) -> usize {
        self.ne[1] * self.ne[2] * self.ne[3]
    }

    /// Base indices of every element, in order (`i0` fastest).
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.rows()).flat_map(|r| self.row(r))
    }

    /// Base indices of row `r`'s elements (rows in `i1`, then `i2`, then `i3` order).
    fn row(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        let i1 = r % self.ne[1];
        let i2 = r / self.ne[1] % self.ne[2];
        let i3 = r / (self.ne[1] * self.ne[2]);
        let first =
            self.offset + i1 * self.strides[1] + i2 * self.strides[2] + i3 * self.strides[3];
        (0..self.ne[0]).map(move |i0| first + i0 * self.strides[0])
    }
}

/// Base values for `view`: the view's elements uniform in [-1, 1) times a scale drawn from
/// 1e-3 .. 1e3 (so that the order of the additions shows in the rounding), NaN everywhere
/// else, so a kernel reading outside the view fails the comparison.
pub fn random_base(view: &View, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut base = vec![f32::NAN; view.base_len()];
    let layout = view.layout();
    for r in 0..layout.rows() {
        for i in layout.row(r) {
            let scale = 10f32.powi(rng.below(7) as i32 - 3);
            base[i] = rng.uniform() * scale;
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
    backend: Backend,
    // The tensors live in the context and point into the buffer: both are kept for as long
    // as the raw pointers below are used, and dropped together.
    _buffer: Buffer,
    _ctx: Context,
    src0: NonNull<sys::ggml_tensor>,
    out: NonNull<sys::ggml_tensor>,
    graph: NonNull<sys::ggml_cgraph>,
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
        let ctx = Context::new(6 + 2 * view.ne.iter().max().copied().unwrap_or(0))?;
        let f = size_of::<f32>();
        // SAFETY: a live no_alloc context with room for these tensors and the graph, a valid
        // view (checked above); every returned pointer is checked before use.
        let (base_t, src0, out, graph) = unsafe {
            let c = ctx.as_ptr();
            let (base_t, src0) = view.build(c, sys::GGML_TYPE_F32, "base")?;
            let out = match method {
                Method::SumRows => non_null(sys::ggml_sum_rows(c, src0.as_ptr()), "ggml_sum_rows")?,
                Method::AddChain => add_chain(c, src0)?,
            };
            ggml::set_name(out.as_ptr(), "out");
            let graph = non_null(sys::ggml_new_graph(c), "ggml_new_graph")?;
            sys::ggml_build_forward_expand(graph.as_ptr(), out.as_ptr());
            (base_t, src0, out, graph)
        };
        // SAFETY: reading fields of the live src0 tensor.
        let (ne, nb) = unsafe { ((*src0.as_ptr()).ne, (*src0.as_ptr()).nb) };
        let predicted =
            (0..4).all(|d| ne[d] as usize == layout.ne[d] && nb[d] == layout.strides[d] * f);
        if !predicted {
            return Err(Error::Shape(format!(
                "ggml's view is ne {ne:?} nb {nb:?}, expected {layout:?} (in floats)"
            )));
        }
        let buffer = Buffer::alloc_ctx_tensors(&ctx, device.buffer_type())?;
        // SAFETY: the graph and its tensors are live (and allocated, as the CPU's extra buffer
        // types want them to be when asked).
        unsafe { device.check_graph(graph.as_ptr())? };
        // SAFETY: the base tensor is allocated (upload checks its size).
        unsafe { upload(base_t, base)? };
        Ok(Self {
            backend: Backend::new(device, threads)?,
            _buffer: buffer,
            _ctx: ctx,
            src0,
            out,
            graph,
            rows: layout.rows(),
        })
    }

    /// Whether `src0`'s elements along dim 0 are adjacent (upstream's CPU kernel asserts so).
    pub fn rows_contiguous(&self) -> bool {
        // SAFETY: reading a field of the live src0 tensor.
        unsafe { (*self.src0.as_ptr()).nb[0] == size_of::<f32>() }
    }

    /// Computes the graph once.
    pub fn compute(&self) -> Result<(), Error> {
        // SAFETY: the graph and all its tensors are allocated and initialised in `new`.
        unsafe { self.backend.compute(self.graph.as_ptr()) }
    }

    /// The sums, one per row of `src0` (`i1`, then `i2`, then `i3` order).
    pub fn output(&self) -> Vec<f32> {
        // SAFETY: dst is an allocated, contiguous F32 tensor.
        let out = unsafe { download(self.out) };
        debug_assert_eq!(out.len(), self.rows);
        out
    }
}

/// `src0`'s rows summed by views over dim 0 and a chain of `ADD` nodes.
///
/// # Safety
/// `c` must be a live no_alloc context with room for `2 * ne0` more tensors, and `src0` a
/// live F32 tensor of it whose dim 1 is contiguous.
unsafe fn add_chain(
    c: *mut sys::ggml_context,
    src0: NonNull<sys::ggml_tensor>,
) -> Result<NonNull<sys::ggml_tensor>, Error> {
    // SAFETY: the caller guarantees the context and src0; each view stays inside src0 (element
    // k of dim 0 with dims 1-3 at src0's strides), and every pointer is checked before use.
    unsafe {
        let (ne, nb) = ((*src0.as_ptr()).ne, (*src0.as_ptr()).nb);
        let part = |k: i64| {
            non_null(
                sys::ggml_view_3d(
                    c,
                    src0.as_ptr(),
                    ne[1],
                    ne[2],
                    ne[3],
                    nb[2],
                    nb[3],
                    k as usize * nb[0],
                ),
                "ggml_view_3d",
            )
        };
        let mut sum = part(0)?;
        if ne[0] == 1 {
            return non_null(sys::ggml_cont(c, sum.as_ptr()), "ggml_cont");
        }
        for k in 1..ne[0] {
            sum = non_null(
                sys::ggml_add(c, sum.as_ptr(), part(k)?.as_ptr()),
                "ggml_add",
            )?;
        }
        Ok(sum)
    }
}
