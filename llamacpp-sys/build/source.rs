//! Locate and verify the pinned source; write one variant's tree into `OUT_DIR`.

use std::path::PathBuf;

use llamacpp_patchkit::overlay::Overlay;
use llamacpp_patchkit::series::Series;
use llamacpp_patchkit::upstream::Vendor;

use crate::config::{Config, Variant};

/// A variant's source tree, ready for CMake.
pub struct Tree {
    pub dir: PathBuf,
    pub variant: Variant,
    pub vendor: Vendor,
    /// The patches applied (empty for the upstream variant).
    pub series: Series,
    /// `LLAMA_BUILD_COMMIT` for this variant: `<upstream-id>` or `<upstream-id>+p<series-hash>`.
    pub build_commit: String,
}

/// Reads `vendor/UPSTREAM`, fetches `vendor/llama.cpp` through `cargo vendor`
/// when it is missing, and verifies it against the recorded tree hash.
pub fn locate_and_verify(cfg: &Config) -> Result<Vendor, String> {
    println!(
        "cargo:rerun-if-changed={}",
        cfg.vendor_dir.join("UPSTREAM").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        cfg.vendor_dir.join("llama.cpp").display()
    );
    println!("cargo:rerun-if-changed={}", cfg.patches_dir.display());
    let vendor = Vendor::open(&cfg.vendor_dir).map_err(|e| {
        format!("{e}\n(llamacpp-sys reads the pin from the workspace's vendor/UPSTREAM; set LLAMACPP_SYS_VENDOR_DIR to use another)")
    })?;
    vendor
        .ensure(&cfg.cargo, &cfg.out_dir)
        .map_err(|e| e.to_string())?;
    Ok(vendor)
}

/// Copies the pristine tree to `OUT_DIR/<variant>/src`, applying the series for
/// the patched variant. Unchanged files keep their timestamps.
pub fn write_variant_tree(cfg: &Config, vendor: &Vendor, variant: Variant) -> Result<Tree, String> {
    let series = match variant {
        Variant::Patched => Series::load(&cfg.patches_dir).map_err(|e| e.to_string())?,
        Variant::Upstream => Series::default(),
    };
    let mut overlay = Overlay::new(vendor.tree());
    series.apply(&mut overlay).map_err(|e| e.to_string())?;
    let dir = cfg.out_dir.join(variant.name()).join("src");
    overlay.sync_to(&dir).map_err(|e| e.to_string())?;
    let id = &vendor.pin.upstream_id;
    let build_commit = match series.short_hash() {
        Some(hash) => format!("{id}+p{hash}"),
        None => id.clone(),
    };
    Ok(Tree {
        dir,
        variant,
        vendor: vendor.clone(),
        series,
        build_commit,
    })
}
