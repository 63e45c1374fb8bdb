//! Hashing and syncing directory trees.
//!
//! A tree's identity is the SHA-256 of its manifest, the `sha256sum`-style
//! listing `"<sha256>  <relative/path>\n"` of every regular file, sorted by path.
//! The manifest format is the one `sha256sum -c` reads, so a user can check a
//! tree by hand.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Result, io_err};

/// Relative path (with `/` separators) to the SHA-256 of the file's contents.
pub type Manifest = BTreeMap<String, String>;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Every regular file below `root`, as sorted relative paths with `/` separators.
pub fn list_files(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err(&path))?;
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// The manifest of every file below `root`.
pub fn manifest(root: &Path) -> Result<Manifest> {
    list_files(root)?
        .into_iter()
        .map(|rel| {
            let path = root.join(&rel);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            Ok((rel, sha256_hex(&bytes)))
        })
        .collect()
}

/// Renders a manifest in `sha256sum` format.
pub fn manifest_text(manifest: &Manifest) -> String {
    manifest
        .iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect()
}

/// Parses a manifest written by [`manifest_text`]; malformed lines are skipped.
pub fn parse_manifest(text: &str) -> Manifest {
    text.lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(sha, path)| (path.to_string(), sha.to_string()))
        .collect()
}

/// The tree hash: SHA-256 of the manifest text.
pub fn tree_hash(manifest: &Manifest) -> String {
    sha256_hex(manifest_text(manifest).as_bytes())
}

/// Files that differ between two manifests: changed, missing from `actual`, or extra in it.
pub fn diff(expected: &Manifest, actual: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (path, sha) in expected {
        match actual.get(path) {
            None => out.push(format!("missing {path}")),
            Some(found) if found != sha => out.push(format!("modified {path}")),
            Some(_) => {}
        }
    }
    out.extend(
        actual
            .keys()
            .filter(|p| !expected.contains_key(*p))
            .map(|p| format!("extra {p}")),
    );
    out
}

/// Makes `dest` hold exactly `files` (relative path to contents).
///
/// Files whose contents are already right are left alone, so their timestamps
/// do not change and an incremental CMake build recompiles only what differs.
/// Files below `dest` that are not in `files` are removed. Returns how many
/// files were written.
pub fn sync<'a>(
    dest: &Path,
    files: impl IntoIterator<Item = (String, std::borrow::Cow<'a, [u8]>)>,
) -> Result<usize> {
    let mut wanted = std::collections::BTreeSet::new();
    let mut written = 0;
    for (rel, bytes) in files {
        let path = dest.join(&rel);
        let same = fs::read(&path).map(|old| old == *bytes).unwrap_or(false);
        if !same {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::write(&path, &bytes).map_err(io_err(&path))?;
            written += 1;
        }
        wanted.insert(rel);
    }
    if dest.exists() {
        for rel in list_files(dest)? {
            if !wanted.contains(&rel) {
                let path = dest.join(&rel);
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_writes_only_changes_and_removes_strays() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let files = |b: &'static [u8]| {
            vec![
                ("a/x.txt".to_string(), std::borrow::Cow::Borrowed(b)),
                ("y".to_string(), b"same"[..].into()),
            ]
        };
        assert_eq!(sync(d, files(b"one")).unwrap(), 2);
        fs::write(d.join("stray"), b"z").unwrap();
        assert_eq!(sync(d, files(b"one")).unwrap(), 0);
        assert!(!d.join("stray").exists());
        assert_eq!(sync(d, files(b"two")).unwrap(), 1);
        assert_eq!(fs::read(d.join("a/x.txt")).unwrap(), b"two");
    }

    #[test]
    fn manifest_round_trips_and_diffs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("s")).unwrap();
        fs::write(dir.path().join("s/f.c"), b"int x;\n").unwrap();
        let m = manifest(dir.path()).unwrap();
        assert_eq!(parse_manifest(&manifest_text(&m)), m);
        let h = tree_hash(&m);
        fs::write(dir.path().join("s/f.c"), b"int y;\n").unwrap();
        let m2 = manifest(dir.path()).unwrap();
        assert_ne!(tree_hash(&m2), h);
        assert_eq!(diff(&m, &m2), vec!["modified s/f.c".to_string()]);
    }
}
