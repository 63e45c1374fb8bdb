//! `patches refresh DIR`: regenerate the patch files and `series` from the
//! commits after `upstream-base` in a git tree made by `tree --git`.

use std::fs;
use std::path::{Path, PathBuf};

use llamacpp_patchkit::series::{Patch, Series};
use llamacpp_patchkit::{Error, Result};

use crate::check;
use crate::export::BASE_TAG;
use crate::git::Git;
use crate::workspace::{Paths, scratch_dir};

/// The comment that heads a `series` file written from scratch.
const DEFAULT_COMMENTS: [&str; 2] = [
    "# The patch series, applied in order to the pinned upstream tree (llamacpp-sys/UPSTREAM).",
    "# One file name per line; see README.md for the tooling and each patch's figures.",
];

/// Runs `refresh`: see the command's help.
pub fn run(paths: &Paths, dir: &Path) -> Result<()> {
    let git = Git::new(dir);
    let generated = format_patches(&git, dir)?;
    let old = SeriesFile::read(&paths.patches)?;
    let series = rename(&generated, &old, &paths.patches);

    let vendor = paths.pristine()?;
    let base_message = git.run(["log", "-1", "--format=%B", BASE_TAG])?;
    if !base_message.contains(&vendor.pin.tree_sha256) {
        eprintln!(
            "note: {BASE_TAG} in {} was not made from the pinned tree ({} {}); the check below tells whether that matters",
            dir.display(),
            vendor.pin.package,
            vendor.pin.version
        );
    }
    println!(
        "refreshed series: {} patch(es) from {}",
        series.patches.len(),
        dir.display()
    );
    if let Err(e) = check::verify(&vendor.tree(), &series) {
        eprintln!("{} left unchanged", paths.patches.display());
        return Err(e);
    }
    write(&paths.patches, &old, &series)
}

/// Runs `git format-patch` on the commits after [`BASE_TAG`] into a scratch
/// directory and returns the patches under git's own names.
fn format_patches(git: &Git, dir: &Path) -> Result<Vec<Patch>> {
    if !git.has_commit(BASE_TAG) {
        return Err(Error::Refused {
            message: format!(
                "{} has no `{BASE_TAG}` tag: refresh works on a tree made by `cargo patches tree --git`",
                dir.display()
            ),
        });
    }
    let range = format!("{BASE_TAG}..HEAD");
    if !git.run(["rev-list", "--merges", &range])?.trim().is_empty() {
        return Err(Error::Refused {
            message: format!(
                "{range} in {} contains merge commits; make it linear (git rebase) first",
                dir.display()
            ),
        });
    }
    if !git
        .run(["status", "--porcelain", "--untracked-files=no"])?
        .trim()
        .is_empty()
    {
        eprintln!(
            "note: uncommitted changes in {} are not part of the refreshed series",
            dir.display()
        );
    }
    let staging = scratch_dir()?;
    let staging_dir = staging.path().to_string_lossy().into_owned();
    let listed = git.run([
        "format-patch",
        "--zero-commit",
        "--no-signature",
        "--no-numbered",
        "--no-thread",
        "--no-cover-letter",
        "-o",
        &staging_dir,
        &range,
    ])?;
    listed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Patch::load(&resolve(dir, l)))
        .collect()
}

/// format-patch prints output paths relative to the repository when `-o` is relative.
fn resolve(dir: &Path, listed: &str) -> PathBuf {
    let path = Path::new(listed.trim());
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// Keeps the existing file names when the number of patches is unchanged
/// (matched by position), and otherwise for each position whose old patch has
/// the same subject (so appending a patch renames nothing); other patches get
/// git's `NNNN-<subject>.patch` names.
fn rename(generated: &[Patch], old: &SeriesFile, dir: &Path) -> Series {
    let same_count = old.names.len() == generated.len();
    let subject = |p: &Patch| p.header().map(|h| h.subject).ok();
    let patches = generated
        .iter()
        .enumerate()
        .map(|(i, new)| {
            let keep = old.names.get(i).filter(|name| {
                same_count
                    || Patch::load(&dir.join(name))
                        .ok()
                        .is_some_and(|p| subject(&p) == subject(new))
            });
            Patch::from_text(keep.unwrap_or(&new.name), &new.text)
        })
        .collect();
    Series { patches }
}

/// `series` as it is on disk: the leading comment block and the listed names.
#[derive(Debug, Default)]
struct SeriesFile {
    comments: Vec<String>,
    names: Vec<String>,
}

impl SeriesFile {
    /// Reads `dir/series`; a missing file is an empty series.
    fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("series");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let mut out = Self::default();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                if out.names.is_empty() {
                    out.comments.push(line.to_string());
                }
            } else {
                out.names.push(trimmed.to_string());
            }
        }
        Ok(out)
    }
}

/// Writes the new patch files and `series`, removes patch files the series no
/// longer lists, and says what changed.
fn write(dir: &Path, old: &SeriesFile, series: &Series) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for patch in &series.patches {
        let verb = write_if_changed(&dir.join(&patch.name), patch.text.as_bytes())?;
        println!("  {verb:9}  {}", patch.name);
    }
    for name in &old.names {
        let path = dir.join(name);
        if !series.patches.iter().any(|p| &p.name == name) && path.exists() {
            fs::remove_file(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            println!("  {:9}  {name}", "removed");
        }
    }
    let comments: Vec<&str> = if old.comments.iter().any(|c| !c.trim().is_empty()) {
        old.comments.iter().map(String::as_str).collect()
    } else {
        DEFAULT_COMMENTS.to_vec()
    };
    let verb = write_if_changed(&dir.join("series"), series.list_text(&comments).as_bytes())?;
    println!("  {verb:9}  series");
    Ok(())
}

/// Writes `bytes` to `path` unless it already holds them; returns what happened.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<&'static str> {
    let verb = match fs::read(path) {
        Ok(old) if old == bytes => return Ok("unchanged"),
        Ok(_) => "updated",
        Err(_) => "new",
    };
    fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(verb)
}
