//! Where an op's input sits in a larger base tensor ([`View`]: a sub-box at an offset, then
//! optionally permuted) and how the kernel then sees it ([`Layout`]). Every op of this crate
//! that reads a non-contiguous input describes it with a [`View`], so that the tests build the
//! same strided and offset inputs the models hand the kernels, and the Rust references read the
//! same elements.

/// Where the input sits in its base tensor: the box `start .. start + ne` of a contiguous `base`
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

    /// The input's sizes and strides (in base elements) after the permutation, and the index of
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

/// The input as the kernel sees it: element `(i0, i1, i2, i3)` is base element
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
    /// Number of rows of the input (the outputs of a row reduction).
    pub fn rows(&self) -> usize {
        self.ne[1] * self.ne[2] * self.ne[3]
    }

    /// Base indices of every element, in order (`i0` fastest).
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.rows()).flat_map(|r| self.row(r))
    }

    /// Base indices of row `r`'s elements (rows in `i1`, then `i2`, then `i3` order).
    pub(crate) fn row(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        let i1 = r % self.ne[1];
        let i2 = r / self.ne[1] % self.ne[2];
        let i3 = r / (self.ne[1] * self.ne[2]);
        let first =
            self.offset + i1 * self.strides[1] + i2 * self.strides[2] + i3 * self.strides[3];
        (0..self.ne[0]).map(move |i0| first + i0 * self.strides[0])
    }
}
