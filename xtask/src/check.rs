//! `patches check`: the series applies cleanly, in order, to the pinned tree.

use std::path::Path;

use llamacpp_patchkit::overlay::Overlay;
use llamacpp_patchkit::series::Series;
use llamacpp_patchkit::{Result, tree};

use crate::report;
use crate::workspace::Paths;

/// Checks the series in `paths` against the verified pristine tree.
pub fn run(paths: &Paths) -> Result<()> {
    let vendor = paths.pristine()?;
    let series = paths.series()?;
    println!(
        "{} {} (tree verified), series {}",
        vendor.pin.package,
        vendor.pin.version,
        paths.patches.display()
    );
    warn_unlisted(&paths.patches, &series)?;
    verify(&vendor.tree(), &series)
}

/// Tries every patch on `base` in order, prints the table, and fails unless all apply.
pub fn verify(base: &Path, series: &Series) -> Result<()> {
    let outcomes = series.check(&mut Overlay::new(base));
    report::print(&outcomes).into_result()
}

/// Mentions `*.patch` files that `series` does not list (they are not applied).
fn warn_unlisted(dir: &Path, series: &Series) -> Result<()> {
    for name in tree::list_files(dir)? {
        if name.ends_with(".patch") && !series.patches.iter().any(|p| p.name == name) {
            eprintln!("note: {name} is not listed in series and is not applied");
        }
    }
    Ok(())
}
