//! `patches canary VERSION`: fetch another release of the upstream package and
//! report, patch by patch, how the series fares on it.

use llamacpp_patchkit::overlay::Overlay;
use llamacpp_patchkit::upstream::{PackageSpec, Pin, fetch_package};
use llamacpp_patchkit::{Result, tree};

use crate::report;
use crate::workspace::{Paths, cargo, scratch_dir};

/// Runs `canary`: succeeds whenever the release could be fetched, since the
/// table is the result.
pub fn run(paths: &Paths, version: &str) -> Result<()> {
    let pin = Pin::load(&paths.pin)?;
    let series = paths.series()?;
    let spec = PackageSpec {
        name: &pin.package,
        version,
        subdir: &pin.subdir,
        crate_sha256: None,
    };
    let scratch = scratch_dir()?;
    let fetched = fetch_package(&cargo(), &spec, scratch.path())?;
    let tree_sha256 = tree::tree_hash(&tree::manifest(&fetched.tree)?);
    println!(
        "canary: {} {version} (pinned: {})",
        pin.package, pin.version
    );
    println!("  crate-sha256 = {}", fetched.crate_sha256);
    println!("  tree-sha256 = {tree_sha256}");
    if tree_sha256 == pin.tree_sha256 {
        println!("  (the same tree as the pin)");
    }
    let outcomes = series.check(&mut Overlay::new(&fetched.tree));
    report::print(&outcomes);
    Ok(())
}
