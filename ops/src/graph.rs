//! The skeleton every op of this crate shares: a one-op ggml graph built in metadata-only
//! contexts ([`Builder`]), then allocated in a device's buffer, its inputs uploaded, computed on
//! a backend and read back ([`OpGraph`]). An op module keeps only what is its own: the sizes,
//! the ggml call that makes its node ([`Builder::node`]), and its Rust reference.
//!
//! Tensors are [`Tensor`] handles. Each carries the id of the graph that made it, checked
//! whenever one is dereferenced, so a handle never reaches another graph's (or a freed)
//! context. The constructors check what ggml does not: a view must lie inside its base, a
//! permutation must be one, an input's data must be exactly the tensor's bytes.

use std::ffi::{CStr, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use llamacpp_sys as sys;

use crate::Error;
use crate::device::{Backend, Device};
use crate::ggml::{self, Buffer, BufferType, Context, non_null};
use crate::view::View;

/// Ids of builders, so that a [`Tensor`] is only ever used with its own graph.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A tensor of one [`Builder`] (and of the [`OpGraph`] it becomes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tensor {
    ptr: NonNull<sys::ggml_tensor>,
    graph: u64,
}

impl Tensor {
    /// The raw tensor, for the ggml call that makes a node ([`Builder::node`]).
    pub(crate) fn as_ptr(self) -> *mut sys::ggml_tensor {
        self.ptr.as_ptr()
    }
}

/// The contexts holding a graph's tensor metadata.
struct Arena {
    id: u64,
    /// The graph and every tensor not placed elsewhere (allocated in the device's buffer type).
    main: Context,
    /// One context per tensor placed in another buffer type, with that type.
    placed: Vec<(Context, BufferType)>,
}

impl Arena {
    fn handle(&self, ptr: *mut sys::ggml_tensor, what: &'static str) -> Result<Tensor, Error> {
        Ok(Tensor {
            ptr: non_null(ptr, what)?,
            graph: self.id,
        })
    }

    /// `t` as a pointer to a live tensor of these contexts (a handle of another graph is a bug
    /// of this crate, and panics).
    fn raw(&self, t: Tensor) -> *mut sys::ggml_tensor {
        assert_eq!(t.graph, self.id, "a tensor of another graph");
        t.ptr.as_ptr()
    }

    fn ne(&self, t: Tensor) -> [usize; 4] {
        // SAFETY: raw gives a live tensor of a context this arena owns; sizes are never negative.
        unsafe { (*self.raw(t)).ne }.map(|n| n as usize)
    }

    fn nb(&self, t: Tensor) -> [usize; 4] {
        // SAFETY: as for ne.
        unsafe { (*self.raw(t)).nb }
    }

    fn nbytes(&self, t: Tensor) -> usize {
        // SAFETY: as for ne; ggml_nbytes only reads the tensor's sizes, strides and type.
        unsafe { sys::ggml_nbytes(self.raw(t)) }
    }

    fn ty(&self, t: Tensor) -> sys::ggml_type {
        // SAFETY: as for ne.
        unsafe { (*self.raw(t)).type_ }
    }
}

/// An input's data, uploaded once its tensor is allocated: a slice the builder borrows.
struct Upload {
    tensor: Tensor,
    data: *const c_void,
    bytes: usize,
}

/// A single-op graph being built: tensors with their data, views of them, and the op's node.
/// [`Builder::finish`] turns it into an [`OpGraph`].
pub(crate) struct Builder<'a> {
    arena: Arena,
    uploads: Vec<Upload>,
    /// The input data, uploaded by `finish`.
    _data: PhantomData<&'a [u8]>,
}

impl<'a> Builder<'a> {
    /// Room for `n_tensors` tensors (inputs, views and nodes) and the graph.
    pub(crate) fn new(n_tensors: usize) -> Result<Self, Error> {
        Ok(Self {
            arena: Arena {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                main: Context::new(n_tensors)?,
                placed: Vec::new(),
            },
            uploads: Vec::new(),
            _data: PhantomData,
        })
    }

    /// A new tensor of type `ty` and sizes `ne` (1 to 4 of them), named `name`, holding `data`
    /// (exactly the tensor's bytes; uploaded by [`Builder::finish`]).
    pub(crate) fn input<T: Copy>(
        &mut self,
        ty: sys::ggml_type,
        ne: &[usize],
        name: &str,
        data: &'a [T],
    ) -> Result<Tensor, Error> {
        let t = new_tensor(&self.arena, self.arena.main.as_ptr(), ty, ne, name)?;
        self.hold(t, data)?;
        Ok(t)
    }

    /// Like [`Builder::input`], in a context of its own whose tensor is allocated in a buffer of
    /// type `buft` instead of the device's (the CPU's `CPU_REPACK` type for weights).
    pub(crate) fn input_in<T: Copy>(
        &mut self,
        buft: BufferType,
        ty: sys::ggml_type,
        ne: &[usize],
        name: &str,
        data: &'a [T],
    ) -> Result<Tensor, Error> {
        let ctx = Context::new(1)?;
        let t = new_tensor(&self.arena, ctx.as_ptr(), ty, ne, name)?;
        self.arena.placed.push((ctx, buft));
        self.hold(t, data)?;
        Ok(t)
    }

    /// `view` of a contiguous base of type `ty` named `name` holding `data`
    /// (`view.base_len()` elements): the box at its offset (`ggml_view_4d`), then permuted
    /// (`ggml_permute`). Checks that ggml's view has the sizes and strides [`View::layout`]
    /// predicts, so that a reference reads the elements the kernel reads.
    pub(crate) fn input_view<T: Copy>(
        &mut self,
        view: &View,
        ty: sys::ggml_type,
        name: &str,
        data: &'a [T],
    ) -> Result<Tensor, Error> {
        if !view.is_valid() {
            return Err(Error::Shape(format!("not a view of its base: {view:?}")));
        }
        let base = self.input(ty, &view.base, name, data)?;
        let nb = self.arena.nb(base);
        // SAFETY: reads a static trait of the tensor's (valid) type.
        let elem = unsafe { sys::ggml_type_size(ty) };
        let layout = view.layout();
        let boxed = self.view(base, &view.ne, &nb[1..], layout.offset * elem)?;
        let permuted = self.permute(boxed, view.perm)?;
        let (ne, nb) = (self.arena.ne(permuted), self.arena.nb(permuted));
        if !(0..4).all(|d| ne[d] == layout.ne[d] && nb[d] == layout.strides[d] * elem) {
            return Err(Error::Shape(format!(
                "ggml's view is ne {ne:?} nb {nb:?}, expected {layout:?} (in elements of \
                 {elem} bytes)"
            )));
        }
        Ok(permuted)
    }

    /// A view of `base` (`ggml_view_1d` .. `ggml_view_4d`): sizes `ne` (1 to 4 of them), the
    /// byte strides of dimensions 1 and up in `nb` (one fewer than `ne`; dimension 0's elements
    /// are adjacent), starting `offset` bytes into `base`. Fails unless every element lies
    /// inside `base`.
    pub(crate) fn view(
        &mut self,
        base: Tensor,
        ne: &[usize],
        nb: &[usize],
        offset: usize,
    ) -> Result<Tensor, Error> {
        let ty = self.arena.ty(base);
        if ne.is_empty() || ne.len() > 4 || nb.len() + 1 != ne.len() {
            return Err(Error::Shape(format!(
                "a view of sizes {ne:?}, strides {nb:?}"
            )));
        }
        // One past the last byte read: the first row, then the last index along every other
        // dimension.
        let mut end = Some(offset);
        if !ne.contains(&0) {
            end = end.and_then(|e| e.checked_add(ggml::row_size(ty, ne[0])));
            for (&n, &stride) in ne[1..].iter().zip(nb) {
                end = end.and_then(|e| e.checked_add((n - 1).checked_mul(stride)?));
            }
        }
        let size = self.arena.nbytes(base);
        if end.is_none_or(|end| end > size) {
            return Err(Error::Shape(format!(
                "a view of sizes {ne:?}, strides {nb:?} at byte {offset} reaches past the \
                 {size} bytes of its base"
            )));
        }
        let c = self.arena.main.as_ptr();
        let b = self.arena.raw(base);
        let n: Vec<i64> = ne.iter().map(|&x| x as i64).collect();
        // SAFETY: a live base of this builder and its live context; the view lies inside the
        // base (checked above), and the count of sizes and strides matches the function.
        let v = unsafe {
            match (n.as_slice(), nb) {
                (&[n0], &[]) => sys::ggml_view_1d(c, b, n0, offset),
                (&[n0, n1], &[s1]) => sys::ggml_view_2d(c, b, n0, n1, s1, offset),
                (&[n0, n1, n2], &[s1, s2]) => sys::ggml_view_3d(c, b, n0, n1, n2, s1, s2, offset),
                (&[n0, n1, n2, n3], &[s1, s2, s3]) => {
                    sys::ggml_view_4d(c, b, n0, n1, n2, n3, s1, s2, s3, offset)
                }
                _ => std::ptr::null_mut(),
            }
        };
        self.arena.handle(v, "ggml_view")
    }

    /// `ggml_permute(t, axes[0], .., axes[3])`: moves axis `i` of `t` to position `axes[i]`.
    pub(crate) fn permute(&mut self, t: Tensor, axes: [usize; 4]) -> Result<Tensor, Error> {
        let mut seen = [false; 4];
        for &a in &axes {
            if a > 3 || std::mem::replace(&mut seen[a], true) {
                return Err(Error::Shape(format!("not a permutation: {axes:?}")));
            }
        }
        let [a0, a1, a2, a3] = axes.map(|a| a as i32);
        // SAFETY: a live tensor of this builder in its live context; the axes are a permutation.
        let p = unsafe {
            sys::ggml_permute(self.arena.main.as_ptr(), self.arena.raw(t), a0, a1, a2, a3)
        };
        self.arena.handle(p, "ggml_permute")
    }

    /// The node `make` builds in the graph's context (the op itself, or a node feeding it);
    /// `what` names the call in the error when it returns null.
    ///
    /// # Safety
    /// `make` must only call ggml's graph constructors on the context it is given and on
    /// tensors of this builder ([`Tensor::as_ptr`]), with arguments that meet those functions'
    /// requirements (the shapes and types ggml asserts, and any the kernel relies on).
    pub(crate) unsafe fn node(
        &mut self,
        what: &'static str,
        make: impl FnOnce(*mut sys::ggml_context) -> *mut sys::ggml_tensor,
    ) -> Result<Tensor, Error> {
        let t = make(self.arena.main.as_ptr());
        self.arena.handle(t, what)
    }

    /// The sizes of `t`.
    pub(crate) fn ne(&self, t: Tensor) -> [usize; 4] {
        self.arena.ne(t)
    }

    /// The byte strides of `t`.
    pub(crate) fn nb(&self, t: Tensor) -> [usize; 4] {
        self.arena.nb(t)
    }

    /// Makes the graph computing `out` (named `out`), allocates every tensor (those of
    /// [`Builder::input_in`] in their buffer types, the rest in `device`'s), fails with
    /// [`Error::DeviceUnsupported`] when the device rejects a node, uploads the inputs, and
    /// starts a backend on `device` (with `threads` threads on the CPU).
    pub(crate) fn finish(
        self,
        out: Tensor,
        device: Device,
        threads: usize,
    ) -> Result<OpGraph, Error> {
        let Self { arena, uploads, .. } = self;
        let out_raw = arena.raw(out);
        // SAFETY: out is a live tensor of the arena's main context, which has room for the graph.
        let graph = unsafe {
            ggml::set_name(out_raw, "out");
            let graph = non_null(sys::ggml_new_graph(arena.main.as_ptr()), "ggml_new_graph")?;
            sys::ggml_build_forward_expand(graph.as_ptr(), out_raw);
            graph
        };
        let mut buffers = Vec::with_capacity(arena.placed.len() + 1);
        for (ctx, buft) in &arena.placed {
            buffers.push(Buffer::alloc_ctx_tensors(ctx, *buft)?);
        }
        buffers.push(Buffer::alloc_ctx_tensors(
            &arena.main,
            device.buffer_type(),
        )?);
        // SAFETY: the graph and its tensors are live and allocated (the CPU's extra buffer types
        // want them allocated when asked about an op).
        unsafe { device.check_graph(graph.as_ptr())? };
        for u in &uploads {
            let t = arena.raw(u.tensor);
            // SAFETY: t is allocated now and its size is u.bytes (checked when the input was
            // made); u.data points to u.bytes bytes of a slice borrowed for the builder's
            // lifetime, which has not ended.
            unsafe { sys::ggml_backend_tensor_set(t, u.data, 0, u.bytes) };
        }
        Ok(OpGraph {
            backend: Backend::new(device, threads)?,
            _buffers: buffers,
            arena,
            graph,
            out,
        })
    }

    /// Records `data` as the content of `t`, which must be exactly its bytes.
    fn hold<T: Copy>(&mut self, t: Tensor, data: &'a [T]) -> Result<(), Error> {
        let bytes = size_of_val(data);
        let size = self.arena.nbytes(t);
        if bytes != size {
            return Err(Error::Shape(format!(
                "{bytes} bytes of data for a tensor of {size}"
            )));
        }
        self.uploads.push(Upload {
            tensor: t,
            data: data.as_ptr().cast::<c_void>(),
            bytes,
        });
        Ok(())
    }
}

/// A new tensor of type `ty` and sizes `ne` in `ctx` (a live no_alloc context of `arena`),
/// named `name`.
fn new_tensor(
    arena: &Arena,
    ctx: *mut sys::ggml_context,
    ty: sys::ggml_type,
    ne: &[usize],
    name: &str,
) -> Result<Tensor, Error> {
    if ty >= sys::GGML_TYPE_COUNT {
        return Err(Error::Shape(format!("not a ggml type: {ty}")));
    }
    // SAFETY: reads a static trait of a type below the count.
    let blck = unsafe { sys::ggml_blck_size(ty) } as usize;
    if ne.is_empty() || ne.len() > 4 || blck == 0 || !ne[0].is_multiple_of(blck) {
        return Err(Error::Shape(format!(
            "a tensor of type {ty} and sizes {ne:?}"
        )));
    }
    let n: Vec<i64> = ne.iter().map(|&x| x as i64).collect();
    // SAFETY: a live no_alloc context (tensor metadata only), a valid type, 1 to 4 sizes of
    // whole blocks; null is returned on failure.
    let t = unsafe { sys::ggml_new_tensor(ctx, ty, n.len() as i32, n.as_ptr()) };
    let t = arena.handle(t, "ggml_new_tensor")?;
    // SAFETY: a live tensor.
    unsafe { ggml::set_name(t.as_ptr(), name) };
    Ok(t)
}

/// A built single-op graph with its inputs uploaded, ready to compute (repeatedly). Dropping it
/// frees, in this order, the backend, the buffers holding the tensors' data, and the contexts
/// holding their metadata.
pub(crate) struct OpGraph {
    backend: Backend,
    _buffers: Vec<Buffer>,
    arena: Arena,
    graph: NonNull<sys::ggml_cgraph>,
    out: Tensor,
}

impl OpGraph {
    /// Computes the graph once.
    pub(crate) fn compute(&self) -> Result<(), Error> {
        // SAFETY: the graph and all its tensors are allocated, and the inputs uploaded, by
        // Builder::finish; they live as long as self.
        unsafe { self.backend.compute(self.graph.as_ptr()) }
    }

    /// The op's node.
    pub(crate) fn out(&self) -> Tensor {
        self.out
    }

    /// The bytes of `t` (all of them, from its first element to its last).
    pub(crate) fn read(&self, t: Tensor) -> Vec<u8> {
        let raw = self.arena.raw(t);
        let mut bytes = vec![0u8; self.arena.nbytes(t)];
        // SAFETY: t is a live, allocated tensor of this graph; the vector holds exactly its bytes.
        unsafe {
            sys::ggml_backend_tensor_get(raw, bytes.as_mut_ptr().cast::<c_void>(), 0, bytes.len())
        };
        bytes
    }

    /// The values of the F32 tensor `t`, in memory order.
    pub(crate) fn read_f32(&self, t: Tensor) -> Vec<f32> {
        self.read(t)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// The byte strides of `t`.
    pub(crate) fn nb(&self, t: Tensor) -> [usize; 4] {
        self.arena.nb(t)
    }

    /// Whether `t` is one contiguous block (`ggml_is_contiguous`).
    pub(crate) fn is_contiguous(&self, t: Tensor) -> bool {
        // SAFETY: a live tensor of this graph.
        unsafe { sys::ggml_is_contiguous(self.arena.raw(t)) }
    }

    /// The name of the buffer type `t` is allocated in.
    pub(crate) fn buffer_type_name(&self, t: Tensor) -> String {
        // SAFETY: t is a live, allocated tensor of this graph, so its buffer is live; buffer type
        // names are static NUL-terminated strings.
        unsafe {
            let buft = sys::ggml_backend_buffer_get_type((*self.arena.raw(t)).buffer);
            CStr::from_ptr(sys::ggml_backend_buft_name(buft))
        }
        .to_string_lossy()
        .into_owned()
    }

    /// Whether the buffer `t` is allocated in set its `extra` (the CPU's repack buffer records
    /// there the layout it chose).
    pub(crate) fn has_extra(&self, t: Tensor) -> bool {
        // SAFETY: reading a field of a live tensor of this graph.
        unsafe { !(*self.arena.raw(t)).extra.is_null() }
    }
}
