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
    /// What the applied patches declare they add (their `Provides:` trailers), in series
    /// order, each once; empty for the upstream variant.
    pub capabilities: Vec<String>,
}

/// Reads the pin (`UPSTREAM`), fetches its tree into the source cache through
/// `cargo vendor` when it is missing, and verifies it against the recorded tree hash.
pub fn locate_and_verify(cfg: &Config) -> Result<Vendor, String> {
    println!("cargo:rerun-if-changed={}", cfg.pin_file.display());
    println!("cargo:rerun-if-changed={}", cfg.patches_dir.display());
    let vendor = Vendor::open(&cfg.pin_file, &cfg.source_cache).map_err(|e| e.to_string())?;
    println!("cargo:rerun-if-changed={}", vendor.tree().display());
    vendor
        .ensure(&cfg.cargo, &cfg.out_dir)
        .map_err(|e| e.to_string())?;
    Ok(vendor)
}

/// The cached pristine tree if it is already there (a prebuilt install has no
/// sources; the shim takes the JSON-schema converter from this tree when it can).
pub fn cached_tree(cfg: &Config) -> Option<PathBuf> {
    let vendor = Vendor::open(&cfg.pin_file, &cfg.source_cache).ok()?;
    Some(vendor.tree()).filter(|d| d.is_dir())
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
    let capabilities = capabilities(&series)?;
    Ok(Tree {
        dir,
        variant,
        vendor: vendor.clone(),
        series,
        build_commit,
        capabilities,
    })
}

/// The `Provides:` trailers of every patch's message, in series order, each once. A value must
/// be one word of lowercase ASCII letters, digits and `-` (it becomes a string constant that
/// the tests look up).
fn capabilities(series: &Series) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for patch in &series.patches {
        let header = patch.header().map_err(|e| e.to_string())?;
        for cap in header.trailer_values("Provides") {
            let well_formed = !cap.is_empty()
                && cap
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !well_formed {
                return Err(format!(
                    "{}: `Provides: {cap}` is not one lowercase word of letters, digits and `-`",
                    patch.name
                ));
            }
            if !out.contains(&cap) {
                out.push(cap);
            }
        }
    }
    Ok(out)
}
