//! `patches tree DIR`: write the patched or pristine tree, optionally as a git
//! repository with one commit per patch.

use std::fs;
use std::path::Path;

use llamacpp_patchkit::overlay::Overlay;
use llamacpp_patchkit::series::Series;
use llamacpp_patchkit::upstream::Vendor;
use llamacpp_patchkit::{Error, Result};

use crate::git::{Git, Identity};
use crate::workspace::Paths;

/// The tag `tree --git` puts on the pristine commit and `refresh` starts from.
pub const BASE_TAG: &str = "upstream-base";

/// Runs `tree`: see the command's help.
pub fn run(paths: &Paths, dir: &Path, upstream: bool, git: bool, force: bool) -> Result<()> {
    let series = if upstream {
        Series::default()
    } else {
        paths.series()?
    };
    check_target(dir, force)?;
    let vendor = paths.pristine()?;
    if git {
        return write_git(&vendor, &series, &paths.patches, dir);
    }
    let mut overlay = Overlay::new(vendor.tree());
    series.apply(&mut overlay)?;
    let written = overlay.sync_to(dir)?;
    println!(
        "{}: {} {} + {} patch(es), {written} file(s) written",
        dir.display(),
        vendor.pin.package,
        vendor.pin.version,
        series.patches.len()
    );
    Ok(())
}

/// `dir` must be absent or an empty directory, unless `force`.
fn check_target(dir: &Path, force: bool) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::Refused {
            message: format!("{} exists and is not a directory", dir.display()),
        });
    }
    let empty = fs::read_dir(dir).map_err(io)?.next().is_none();
    if empty || force {
        Ok(())
    } else {
        Err(Error::Refused {
            message: format!(
                "{} is not empty; choose another directory, or pass --force to make it match the tree \
                 (files that are not in the tree are deleted)",
                dir.display()
            ),
        })
    }
}

/// The pristine tree as the first commit (tagged [`BASE_TAG`]), then one
/// commit per patch with the patch's author, date and message.
fn write_git(vendor: &Vendor, series: &Series, patches: &Path, dir: &Path) -> Result<()> {
    let mut overlay = Overlay::new(vendor.tree());
    overlay.sync_to(dir)?;
    let git = Git::new(dir);
    git.run(["init", "-q", "--initial-branch=patched"])?;
    let pin = &vendor.pin;
    let base_message = format!(
        "{} {}: pristine upstream tree\n\nupstream-id {}\ntree-sha256 {}\n",
        pin.package, pin.version, pin.upstream_id, pin.tree_sha256
    );
    git.commit_all(&Identity::tool(), &base_message)?;
    git.run(["tag", BASE_TAG])?;
    for patch in &series.patches {
        let header = patch.header()?;
        if let Err(e) = patch.apply(&mut overlay) {
            eprintln!(
                "note: {dir} holds {BASE_TAG} and the commits before {name}; apply the rest by hand, e.g.\n  \
                 git -C {dir} am --reject {patch_path}\n\
                 (fix the .rej hunks, `git add` the files, `git am --continue`), then run `cargo patches refresh {dir}`",
                dir = dir.display(),
                name = patch.name,
                patch_path = patches.join(&patch.name).display(),
            );
            return Err(e);
        }
        for rel in overlay.changed_paths() {
            let path = dir.join(rel);
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            match overlay.read(rel)? {
                Some(bytes) => {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(|source| Error::Io {
                            path: parent.to_path_buf(),
                            source,
                        })?;
                    }
                    fs::write(&path, bytes).map_err(io)?;
                }
                None if path.exists() => fs::remove_file(&path).map_err(io)?,
                None => {}
            }
        }
        git.commit_all(&Identity::author(&header), &header.message())?;
        println!("  committed {}", patch.name);
    }
    println!(
        "{}: git repository, {} {} tagged {BASE_TAG}, then {} patch commit(s) on branch `patched`\n\
         edit and commit there, then run `cargo patches refresh {}`",
        dir.display(),
        pin.package,
        pin.version,
        series.patches.len(),
        dir.display()
    );
    Ok(())
}
