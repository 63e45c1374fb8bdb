//! Link lines, derived from the libraries the build actually installed; the decisions
//! live in `link_plan.rs` (pure, and tested on every platform by `tests/link_plan.rs`).

use crate::cmake_build::Built;
use crate::config::Config;
use crate::link_plan::{Backends, Installed, link_lines};

/// Prints the `cargo:` link lines for what `built` installed.
pub fn emit(cfg: &Config, built: &Built) -> Result<(), String> {
    let f = cfg.features;
    let backends = Backends {
        metal: f.metal,
        openmp: f.openmp,
        cuda: f.cuda,
        vulkan: f.vulkan,
        rpc: f.rpc,
        cuda_path: cfg.cuda_path.clone(),
        vulkan_sdk: cfg.vulkan_sdk.clone(),
    };
    let installed = Installed {
        lib_dir: built.lib_dir.clone(),
        files: built.files.clone(),
        dynamic: built.dynamic,
    };
    for line in link_lines(&cfg.target, &backends, &installed)? {
        println!("{line}");
    }
    Ok(())
}
