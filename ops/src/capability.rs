//! What the linked ggml can do beyond the pinned upstream, as the applied patches declare it.
//!
//! Each patch that adds something the tests need names it in a `Provides:` trailer of its
//! commit message (`llamacpp-sys/patches/README.md`), and `llamacpp-sys` lists the capabilities
//! of the patches it applied in [`llamacpp_sys::build_info::CAPABILITIES`]
//! (none for the upstream variant or a prebuilt install). The tests ask [`has`] which behaviour
//! to expect, never the patch file names or the variant, so renaming or splitting a patch
//! cannot quietly change which cases run. [`ALL`] lists every capability this crate queries:
//! the patched build must declare each one (`tests/capabilities.rs`).

use llamacpp_sys::build_info;

/// CPU `MUL_MAT_ID` with repacked weights gives an expert named in several slots of one token
/// all its rows: the per-expert row lists hold slots × tokens rows (patch 0002).
pub const MUL_MAT_ID_REPACK_REPEATED_EXPERTS: &str = "mul-mat-id-repack-repeated-experts";
/// CPU `SUM_ROWS` takes a source whose dim 0 is strided, such as the permuted view of the MoE
/// expert sum (patch 0004; upstream's kernel asserts a contiguous dim 0).
pub const SUM_ROWS_STRIDED_DIM0: &str = "sum-rows-strided-dim0";
/// `GATED_DELTA_NET` has the interleaved q/k head broadcast on the CPU (patch 0006).
pub const GDN_INTERLEAVED_BROADCAST: &str = "gdn-interleaved-broadcast";
/// `GATED_DELTA_NET` writes its states into cache rows (`src[6]`) on the CPU (patch 0007).
pub const GDN_STATE_IN_PLACE: &str = "gdn-state-in-place";
/// `GATED_DELTA_NET` reads each sequence's input state from the cache row an id names
/// (`src[7]`) on the CPU (patch 0041).
pub const GDN_STATE_ROWS: &str = "gdn-state-rows";
/// `GATED_DELTA_NET` L2-normalises q and k itself on the CPU (patch 0010).
pub const GDN_QK_L2_NORM: &str = "gdn-qk-l2-norm";
/// CUDA's element-wise unary ops read views with any strides (patch 0011).
pub const CUDA_UNARY_STRIDED_VIEWS: &str = "cuda-unary-strided-views";
/// Vulkan implements [`GDN_INTERLEAVED_BROADCAST`] (patch 0013).
pub const VULKAN_GDN_INTERLEAVED_BROADCAST: &str = "vulkan-gdn-interleaved-broadcast";
/// Vulkan implements [`GDN_STATE_IN_PLACE`] (patch 0013).
pub const VULKAN_GDN_STATE_IN_PLACE: &str = "vulkan-gdn-state-in-place";
/// Vulkan implements [`GDN_QK_L2_NORM`] (patch 0013).
pub const VULKAN_GDN_QK_L2_NORM: &str = "vulkan-gdn-qk-l2-norm";
/// CUDA implements [`GDN_INTERLEAVED_BROADCAST`] (patch 0014).
pub const CUDA_GDN_INTERLEAVED_BROADCAST: &str = "cuda-gdn-interleaved-broadcast";
/// CUDA implements [`GDN_STATE_IN_PLACE`] (patch 0014).
pub const CUDA_GDN_STATE_IN_PLACE: &str = "cuda-gdn-state-in-place";
/// CUDA implements [`GDN_QK_L2_NORM`] (patch 0014).
pub const CUDA_GDN_QK_L2_NORM: &str = "cuda-gdn-qk-l2-norm";
/// The x86 CPU backend repacks Q8_0 weights in builds with AVX2 (patch 0036; upstream repacks
/// Q8_0 only on ARM, and patch 0016 only with VNNI).
pub const CPU_X86_Q8_0_REPACK_AVX2: &str = "cpu-x86-q8-0-repack-avx2";

/// Every capability this crate and its tests query.
pub const ALL: &[&str] = &[
    MUL_MAT_ID_REPACK_REPEATED_EXPERTS,
    SUM_ROWS_STRIDED_DIM0,
    GDN_INTERLEAVED_BROADCAST,
    GDN_STATE_IN_PLACE,
    GDN_STATE_ROWS,
    GDN_QK_L2_NORM,
    CUDA_UNARY_STRIDED_VIEWS,
    VULKAN_GDN_INTERLEAVED_BROADCAST,
    VULKAN_GDN_STATE_IN_PLACE,
    VULKAN_GDN_QK_L2_NORM,
    CUDA_GDN_INTERLEAVED_BROADCAST,
    CUDA_GDN_STATE_IN_PLACE,
    CUDA_GDN_QK_L2_NORM,
    CPU_X86_Q8_0_REPACK_AVX2,
];

/// Whether the linked build declares `capability` (one of the constants of this module).
///
/// ```
/// use llamacpp_ops::capability::{self, has};
/// assert_eq!(
///     has(capability::GDN_STATE_IN_PLACE),
///     llamacpp_sys::build_info::VARIANT == "patched"
/// );
/// ```
pub fn has(capability: &str) -> bool {
    build_info::CAPABILITIES.contains(&capability)
}
