//! The pinned upstream source: the pin file (`llamacpp-sys/UPSTREAM`), fetching
//! and verification.
//!
//! The tree comes out of a registry package through `cargo vendor` on a
//! throwaway manifest, so cargo's own download machinery (its cache, its
//! checksum check, its offline mode) does the work and no host is named here.
//! Fetched trees live in a cache keyed by the pin's tree hash (by default under
//! Cargo's home, see [`default_cache_root`]), never in a package's source
//! directory, so a published `llamacpp-sys` builds from its `.crate` alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result, io_err, tree};

/// The contents of a pin file (`llamacpp-sys/UPSTREAM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Registry package that carries the tree (`llama-cpp-sys-2`).
    pub package: String,
    /// Exact version of that package.
    pub version: String,
    /// SHA-256 of the `.crate` archive, as the registry index records it.
    pub crate_sha256: String,
    /// Directory inside the package that holds llama.cpp (`llama.cpp`).
    pub subdir: String,
    /// Tree hash (see [`tree::tree_hash`]) of that directory.
    pub tree_sha256: String,
    /// Short identity of the pinned source, used in build ids.
    pub upstream_id: String,
}

impl Pin {
    /// Reads and parses a pin file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        Self::parse(&text).map_err(|message| Error::Pin {
            path: path.into(),
            message,
        })
    }

    /// Parses `key = value` lines; `#` starts a comment line.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected `key = value`", n + 1))?;
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut take = |k: &str| map.remove(k).ok_or_else(|| format!("missing key `{k}`"));
        Ok(Self {
            package: take("package")?,
            version: take("version")?,
            crate_sha256: take("crate-sha256")?,
            subdir: take("subdir")?,
            tree_sha256: take("tree-sha256")?,
            upstream_id: take("upstream-id")?,
        })
    }

    /// The name of this pin's entry in a source cache: package, version and the
    /// start of the tree hash, so two pins never share an entry.
    pub fn cache_key(&self) -> String {
        let hash: String = self.tree_sha256.chars().take(16).collect();
        format!("{}-{}-{hash}", self.package, self.version)
    }
}

/// The default root of the source cache: `<Cargo home>/llamacpp-sys/sources`
/// (`$CARGO_HOME`, else `~/.cargo`).
pub fn default_cache_root() -> Result<PathBuf> {
    home::cargo_home()
        .map(|h| h.join("llamacpp-sys").join("sources"))
        .map_err(|source| Error::Io {
            path: PathBuf::from("$CARGO_HOME"),
            source,
        })
}

/// Where the verified tree lives and how to recreate it.
#[derive(Debug, Clone)]
pub struct Vendor {
    /// This pin's entry in the source cache (holds the tree and its manifest).
    pub dir: PathBuf,
    /// The parsed pin.
    pub pin: Pin,
}

impl Vendor {
    /// Reads the pin file and places its tree in `cache_root`, under the pin's
    /// [`Pin::cache_key`].
    pub fn open(pin_file: &Path, cache_root: &Path) -> Result<Self> {
        let pin = Pin::load(pin_file)?;
        Ok(Self {
            dir: cache_root.join(pin.cache_key()),
            pin,
        })
    }

    /// The pristine tree (`<cache entry>/llama.cpp`).
    pub fn tree(&self) -> PathBuf {
        self.dir.join(&self.pin.subdir)
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("tree.sha256")
    }

    /// Returns the verified tree, fetching it first when it is absent.
    ///
    /// `cargo` is the cargo binary to run `cargo vendor` with; `scratch` is a
    /// directory the fetch may use (a build script passes a path in `OUT_DIR`).
    pub fn ensure(&self, cargo: &Path, scratch: &Path) -> Result<PathBuf> {
        let tree = self.tree();
        if !tree.exists() {
            self.fetch(cargo, scratch)?;
        }
        self.verify()?;
        Ok(tree)
    }

    /// Checks the cached tree against the pinned tree hash, naming the
    /// differing files when the manifest saved at fetch time is available.
    pub fn verify(&self) -> Result<tree::Manifest> {
        let found = tree::manifest(&self.tree())?;
        let found_hash = tree::tree_hash(&found);
        if found_hash == self.pin.tree_sha256 {
            return Ok(found);
        }
        let saved = fs::read_to_string(self.manifest_path())
            .ok()
            .map(|t| tree::parse_manifest(&t));
        let detail = match saved.filter(|m| tree::tree_hash(m) == self.pin.tree_sha256) {
            Some(expected) => {
                let d = tree::diff(&expected, &found);
                let shown: Vec<_> = d.iter().take(10).cloned().collect();
                let more = if d.len() > 10 {
                    format!(" (and {} more)", d.len() - 10)
                } else {
                    String::new()
                };
                format!("\n  differing files: {}{more}", shown.join(", "))
            }
            None => String::new(),
        };
        Err(Error::Tampered {
            dir: self.tree(),
            expected: self.pin.tree_sha256.clone(),
            found: found_hash,
            detail,
        })
    }

    /// Fetches the package with `cargo vendor` and moves its subtree into place.
    pub fn fetch(&self, cargo: &Path, scratch: &Path) -> Result<()> {
        let src = fetch_package(cargo, &self.pin.spec(), scratch)?.tree;
        let manifest = tree::manifest(&src)?;
        let hash = tree::tree_hash(&manifest);
        if hash != self.pin.tree_sha256 {
            return Err(Error::Tampered {
                dir: src,
                expected: self.pin.tree_sha256.clone(),
                found: hash,
                detail: "\n  the registry package itself does not match the pin".into(),
            });
        }
        // Copy into a private directory and rename, so a concurrent or interrupted
        // build never sees a half-written tree.
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let staging = self.dir.join(format!(".tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        copy_tree(&src, &staging)?;
        fs::write(self.manifest_path(), tree::manifest_text(&manifest))
            .map_err(io_err(self.manifest_path()))?;
        if let Err(e) = fs::rename(&staging, self.tree()) {
            let _ = fs::remove_dir_all(&staging);
            if !self.tree().exists() {
                return Err(io_err(self.tree())(e));
            }
        }
        Ok(())
    }
}

/// A registry package to fetch with [`fetch_package`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageSpec<'a> {
    /// Package name (`llama-cpp-sys-2`).
    pub name: &'a str,
    /// Exact version.
    pub version: &'a str,
    /// Directory inside the package to return (`llama.cpp`).
    pub subdir: &'a str,
    /// Expected SHA-256 of the `.crate` archive; `None` accepts whatever the
    /// registry serves (cargo still checks the archive against its index).
    pub crate_sha256: Option<&'a str>,
}

impl Pin {
    /// The pinned package, with its recorded archive checksum.
    pub fn spec(&self) -> PackageSpec<'_> {
        PackageSpec {
            name: &self.package,
            version: &self.version,
            subdir: &self.subdir,
            crate_sha256: Some(&self.crate_sha256),
        }
    }
}

/// What [`fetch_package`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The package's subtree (inside the scratch directory).
    pub tree: PathBuf,
    /// The archive checksum cargo recorded in its lock file.
    pub crate_sha256: String,
}

/// Runs `cargo vendor` on a throwaway manifest that depends on the package
/// and returns the path of its subtree. Tries offline first, so a warm cargo
/// cache needs no network.
pub fn fetch_package(cargo: &Path, spec: &PackageSpec<'_>, scratch: &Path) -> Result<Fetched> {
    let work = scratch.join("upstream-fetch");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(work.join("src")).map_err(io_err(&work))?;
    let manifest = format!(
        "[package]\nname = \"upstream-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{} = \"={}\"\n\n# Not part of any enclosing workspace.\n[workspace]\n",
        spec.name, spec.version
    );
    fs::write(work.join("Cargo.toml"), manifest).map_err(io_err(&work))?;
    fs::write(work.join("src/lib.rs"), "").map_err(io_err(&work))?;
    let out = work.join("vendor");
    let mut last_err = String::new();
    for offline in [true, false] {
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&work)
            .args(["vendor", "--versioned-dirs", "--quiet"]);
        if offline {
            cmd.arg("--offline");
        }
        cmd.arg(&out);
        // A build script inherits variables meant for the outer build; none of them apply here.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CARGO_TARGET_")
                || key == "RUSTFLAGS"
                || key == "CARGO_ENCODED_RUSTFLAGS"
            {
                cmd.env_remove(key);
            }
        }
        match cmd.output() {
            Ok(o) if o.status.success() => {
                let crate_sha256 = check_lock(&work.join("Cargo.lock"), spec)?;
                let dir = out
                    .join(format!("{}-{}", spec.name, spec.version))
                    .join(spec.subdir);
                if !dir.is_dir() {
                    return Err(Error::Command {
                        command: "cargo vendor".into(),
                        message: format!("{} is missing after vendoring", dir.display()),
                    });
                }
                return Ok(Fetched {
                    tree: dir,
                    crate_sha256,
                });
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: Vec<_> = err.lines().rev().take(6).collect();
                last_err = format!(
                    "{}: {}",
                    o.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    Err(Error::Command {
        command: format!("{} vendor {}@={}", cargo.display(), spec.name, spec.version),
        message: last_err,
    })
}

/// The archive checksum cargo recorded in `lock` for the package; it must be
/// the expected one when the spec names one.
fn check_lock(lock: &Path, spec: &PackageSpec<'_>) -> Result<String> {
    let text = fs::read_to_string(lock).map_err(io_err(lock))?;
    let header = format!("name = \"{}\"\nversion = \"{}\"\n", spec.name, spec.version);
    let block = text
        .split("[[package]]")
        .find(|b| b.trim_start().starts_with(header.trim_end()));
    let sum = block
        .and_then(|b| b.lines().find_map(|l| l.strip_prefix("checksum = \"")))
        .map(|s| s.trim_end_matches('"'));
    match (sum, spec.crate_sha256) {
        (Some(found), Some(expected)) if found == expected => Ok(found.into()),
        (Some(found), None) => Ok(found.into()),
        (found, expected) => Err(Error::Tampered {
            dir: lock.into(),
            expected: expected.unwrap_or("a checksum").into(),
            found: found.unwrap_or("none").into(),
            detail:
                "\n  the registry's archive checksum differs from crate-sha256 in the pin (UPSTREAM)"
                    .into(),
        }),
    }
}

/// Copies every file below `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for rel in tree::list_files(from)? {
        let dst = to.join(&rel);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::copy(from.join(&rel), &dst).map_err(io_err(&dst))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_parses_and_reports_missing_keys() {
        let text = "# c\npackage = p\nversion = 1\ncrate-sha256 = aa\nsubdir = s\ntree-sha256 = bb\nupstream-id = u\n";
        let pin = Pin::parse(text).unwrap();
        assert_eq!(pin.version, "1");
        assert_eq!(pin.upstream_id, "u");
        let err = Pin::parse("package = p\n").unwrap_err();
        assert!(err.contains("version"), "{err}");
    }

    #[test]
    fn tampered_tree_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src-tree");
        fs::create_dir_all(src.join("src")).unwrap();
        fs::write(src.join("src/a.cpp"), "int a;\n").unwrap();
        let m = tree::manifest(&src).unwrap();
        let pin = format!(
            "package = p\nversion = 1\ncrate-sha256 = x\nsubdir = llama.cpp\ntree-sha256 = {}\nupstream-id = u\n",
            tree::tree_hash(&m)
        );
        fs::write(dir.path().join("UPSTREAM"), pin).unwrap();
        let v = Vendor::open(&dir.path().join("UPSTREAM"), &dir.path().join("cache")).unwrap();
        assert!(
            v.dir
                .ends_with(format!("p-1-{}", &tree::tree_hash(&m)[..16]))
        );
        copy_tree(&src, &v.tree()).unwrap();
        fs::write(v.manifest_path(), tree::manifest_text(&m)).unwrap();
        v.verify().unwrap();
        let tree_dir = v.tree();
        fs::write(tree_dir.join("src/a.cpp"), "int b;\n").unwrap();
        let err = v.verify().unwrap_err().to_string();
        assert!(err.contains("modified src/a.cpp"), "{err}");
    }

    #[test]
    fn lock_checksum_is_checked_only_when_known() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        fs::write(&lock, "[[package]]\nname = \"p\"\nversion = \"1.0.0\"\nsource = \"registry\"\nchecksum = \"abc\"\n").unwrap();
        let mut spec = PackageSpec {
            name: "p",
            version: "1.0.0",
            subdir: "s",
            crate_sha256: None,
        };
        assert_eq!(check_lock(&lock, &spec).unwrap(), "abc");
        spec.crate_sha256 = Some("abc");
        assert_eq!(check_lock(&lock, &spec).unwrap(), "abc");
        spec.crate_sha256 = Some("def");
        let err = check_lock(&lock, &spec).unwrap_err().to_string();
        assert!(err.contains("def") && err.contains("abc"), "{err}");
        spec.version = "2.0.0";
        spec.crate_sha256 = None;
        assert!(
            check_lock(&lock, &spec).is_err(),
            "a package missing from the lock file is an error"
        );
    }
}
