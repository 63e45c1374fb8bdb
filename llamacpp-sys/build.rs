//! Builds the pinned llama.cpp with this workspace's patch series applied.
//!
//! Stages, in order: read the configuration; locate and verify the upstream
//! source; write the patched (or pristine) tree into `OUT_DIR`; build it with
//! CMake (or take a prebuilt one from `LLAMACPP_SYS_PREFIX`); emit link lines; generate
//! bindings; record what was built. See the crate README for the variables.

#[path = "build/bindings.rs"]
mod bindings;
#[path = "build/cmake_build.rs"]
mod cmake_build;
#[path = "build/config.rs"]
mod config;
#[path = "build/info.rs"]
mod info;
#[path = "build/link.rs"]
mod link;
#[path = "build/link_plan.rs"]
mod link_plan;
#[path = "build/shim.rs"]
mod shim;
#[path = "build/source.rs"]
mod source;

use config::Config;

fn main() {
    if let Err(e) = run() {
        // One readable line per cause instead of a panic backtrace.
        eprintln!("error: llamacpp-sys build failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let cfg = Config::from_env()?;
    if cfg.docs_only {
        bindings::pregenerated(&cfg)?;
        info::record_docs(&cfg);
        return Ok(());
    }
    // `llama_src`: the tree the shim takes llama.cpp's JSON-schema converter from.
    let (built, llama_src) = match &cfg.prefix {
        Some(prefix) => (
            cmake_build::Built::prebuilt(&cfg.target, prefix)?,
            source::cached_tree(&cfg),
        ),
        None => {
            let pristine = source::locate_and_verify(&cfg)?;
            let tree = source::write_variant_tree(&cfg, &pristine, cfg.variant)?;
            let built = cmake_build::build(&cfg, &tree, cfg.variant, cfg.features.dynamic)?;
            if cfg.features.side_by_side {
                let other = cfg.variant.other();
                let other_tree = source::write_variant_tree(&cfg, &pristine, other)?;
                let other_built = cmake_build::build(&cfg, &other_tree, other, true)?;
                info::record_side_by_side(&other_tree, &other_built);
            }
            info::record(&cfg, &tree, &built);
            (built, Some(tree.dir))
        }
    };
    shim::compile(&built.include_dirs, llama_src.as_deref());
    link::emit(&cfg, &built)?;
    bindings::generate(&cfg, &built.include_dirs)?;
    if cfg.prefix.is_some() {
        info::record_prebuilt(&cfg, &built);
    }
    Ok(())
}
