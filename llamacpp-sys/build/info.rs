//! Records what was built as Rust constants (`OUT_DIR/build_info.rs`).

use std::fmt::Write;

use crate::cmake_build::Built;
use crate::config::Config;
use crate::source::Tree;

fn backends(cfg: &Config) -> Vec<&'static str> {
    let f = cfg.features;
    let mut v = vec!["CPU"];
    for (on, name) in [
        (f.cuda, "CUDA"),
        (f.vulkan, "Vulkan"),
        (f.metal, "Metal"),
        (f.rpc, "RPC"),
    ] {
        if on {
            v.push(name);
        }
    }
    v
}

fn write(cfg: &Config, body: &str) {
    let path = cfg.out_dir.join("build_info.rs");
    if let Err(e) = std::fs::write(&path, body) {
        println!("cargo:warning=cannot write {}: {e}", path.display());
    }
}

fn common(
    cfg: &Config,
    s: &mut String,
    variant: &str,
    commit: &str,
    package: &str,
    version: &str,
    id: &str,
) {
    let _ = writeln!(
        s,
        "/// Registry package the upstream source came from.\npub const UPSTREAM_PACKAGE: &str = {package:?};"
    );
    let _ = writeln!(
        s,
        "/// Exact version of that package.\npub const UPSTREAM_VERSION: &str = {version:?};"
    );
    let _ = writeln!(
        s,
        "/// Short identity of the pinned upstream source.\npub const UPSTREAM_ID: &str = {id:?};"
    );
    let _ = writeln!(
        s,
        "/// `patched`, `upstream`, `prebuilt` or `docs` (a docs build that links nothing).\npub const VARIANT: &str = {variant:?};"
    );
    let _ = writeln!(
        s,
        "/// `LLAMA_BUILD_COMMIT` of the linked libraries (also what `ggml_commit()` returns).\npub const BUILD_COMMIT: &str = {commit:?};"
    );
    let _ = writeln!(
        s,
        "/// Backends compiled in.\npub const BACKENDS: &[&str] = &{:?};",
        backends(cfg)
    );
    let _ = writeln!(
        s,
        "/// Whether the libraries are shared objects.\npub const DYNAMIC: bool = {};",
        cfg.features.dynamic
    );
}

/// `CAPABILITIES`: what the applied patches declare they add (empty when none was applied, or
/// when they are unknown, as for a prebuilt install).
fn capabilities(s: &mut String, caps: &[String]) {
    let _ = writeln!(
        s,
        "/// What this build can do beyond the pinned upstream, as the applied patches declare it:\n\
         /// the `Provides:` trailers of their commit messages (`patches/README.md`), in series\n\
         /// order, each once. Empty for the upstream variant (`LLAMACPP_SYS_PATCHES=none`) and for a\n\
         /// prebuilt install (whose patches are unknown), so code that needs a patched behaviour\n\
         /// looks it up here (`CAPABILITIES.contains(&\"gdn-state-in-place\")`) instead of\n\
         /// guessing from patch file names or the variant.\n\
         pub const CAPABILITIES: &[&str] = &{caps:?};"
    );
}

pub fn record(cfg: &Config, tree: &Tree, built: &Built) {
    let pin = &tree.vendor.pin;
    let mut s = String::new();
    common(
        cfg,
        &mut s,
        tree.variant.name(),
        &tree.build_commit,
        &pin.package,
        &pin.version,
        &pin.upstream_id,
    );
    let patches: Vec<(String, String)> = tree
        .series
        .patches
        .iter()
        .map(|p| (p.name.clone(), p.sha256[..12].to_string()))
        .collect();
    let _ = writeln!(
        s,
        "/// Patches applied, in order: (file name, first 12 hex digits of its SHA-256).\npub const PATCHES: &[(&str, &str)] = &{patches:?};"
    );
    let _ = writeln!(
        s,
        "/// Short hash of the whole series, if any patch was applied.\npub const SERIES_HASH: Option<&str> = {:?};",
        tree.series.short_hash()
    );
    capabilities(&mut s, &tree.capabilities);
    let _ = writeln!(
        s,
        "/// Directory holding the linked libraries.\npub const LIB_DIR: &str = {:?};",
        built.lib_dir.display().to_string()
    );
    let other = cfg.out_dir.join(tree.variant.other().name()).join("lib");
    let other = cfg
        .features
        .side_by_side
        .then(|| other.display().to_string());
    let _ = writeln!(
        s,
        "/// With the `side-by-side` feature: the other variant's shared libraries.\npub const OTHER_LIB_DIR: Option<&str> = {other:?};"
    );
    write(cfg, &s);
}

pub fn record_side_by_side(tree: &Tree, built: &Built) {
    println!("cargo:other_lib_dir={}", built.lib_dir.display());
    println!("cargo:other_build_commit={}", tree.build_commit);
}

pub fn record_prebuilt(cfg: &Config, built: &Built) {
    record_unbuilt(cfg, "prebuilt", &built.lib_dir.display().to_string());
}

/// A docs build links nothing: the constants say so.
pub fn record_docs(cfg: &Config) {
    record_unbuilt(cfg, "docs", "");
}

fn record_unbuilt(cfg: &Config, variant: &str, lib_dir: &str) {
    let mut s = String::new();
    common(cfg, &mut s, variant, "unknown", variant, "unknown", variant);
    let _ = writeln!(
        s,
        "/// Patches applied, in order (unknown for a prebuilt install).\npub const PATCHES: &[(&str, &str)] = &[];"
    );
    let _ = writeln!(
        s,
        "/// Short hash of the whole series (unknown for a prebuilt install).\npub const SERIES_HASH: Option<&str> = None;"
    );
    capabilities(&mut s, &[]);
    let _ = writeln!(
        s,
        "/// Directory holding the linked libraries.\npub const LIB_DIR: &str = {lib_dir:?};"
    );
    let _ = writeln!(
        s,
        "/// The other variant's libraries (none for a prebuilt install).\npub const OTHER_LIB_DIR: Option<&str> = None;"
    );
    write(cfg, &s);
}
