//! bindgen over llama.h and the ggml headers the workspace uses (the
//! configuration lives in `llamacpp_patchkit::bindings`, shared with the
//! pregenerated docs copy).

use std::path::{Path, PathBuf};

use llamacpp_patchkit::bindings::{Options, builder, wrapper};

use crate::config::Config;

pub fn generate(cfg: &Config, include_dirs: &[PathBuf]) -> Result<(), String> {
    let wrapper = wrapper(&cfg.manifest_dir);
    println!("cargo:rerun-if-changed={}", wrapper.display());
    let opts = Options {
        rpc: cfg.features.rpc,
        comments: true,
        layout_tests: true,
    };
    let out = cfg.out_dir.join("bindings.rs");
    builder(&wrapper, include_dirs, opts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .map_err(|e| {
            format!("bindgen failed: {e} (is libclang installed? see the README's prerequisites)")
        })?
        .write_to_file(&out)
        .map_err(|e| format!("{}: {e}", out.display()))
}

/// A docs build (`DOCS_RS` or the `docs-only` feature): no source, no C++
/// toolchain, no libclang; the committed `pregenerated/bindings.rs.in` (written
/// by `cargo patches bindings`) stands in for the generated file.
pub fn pregenerated(cfg: &Config) -> Result<(), String> {
    let from: &Path = &cfg.manifest_dir.join("pregenerated/bindings.rs.in");
    println!("cargo:rerun-if-changed={}", from.display());
    let out = cfg.out_dir.join("bindings.rs");
    std::fs::copy(from, &out)
        .map(drop)
        .map_err(|e| format!("{}: {e}", from.display()))
}
