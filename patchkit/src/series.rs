//! The patch series: `llamacpp-sys/patches/series` and the `NNNN-name.patch` files it lists.

use std::fs;
use std::path::{Path, PathBuf};

use diffy::patch_set::{FileOperation, ParseOptions, PatchSet};

use crate::mail::{self, Header};
use crate::overlay::Overlay;
use crate::{Error, Result, io_err, tree};

/// One patch file of the series.
#[derive(Debug, Clone)]
pub struct Patch {
    /// File name, for example `0001-qwen3next-alpha-no-cont.patch`.
    pub name: String,
    /// Full text of the patch file.
    pub text: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// What happens when a patch meets a tree.
#[derive(Debug)]
pub enum Status {
    /// Every hunk applies.
    Applies,
    /// The patch does not apply, but its reverse does: the tree already has it.
    AlreadyApplied,
    /// Neither the patch nor its reverse applies.
    Conflicts(Error),
}

/// One patch's result in [`Series::check`].
#[derive(Debug)]
pub struct Outcome {
    /// The patch file name.
    pub name: String,
    /// What happened to it.
    pub status: Status,
}

/// The ordered list of patches.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Patches in application order.
    pub patches: Vec<Patch>,
}

impl Series {
    /// Reads `dir/series` and every patch it names (blank lines and `#` comments skipped).
    pub fn load(dir: &Path) -> Result<Self> {
        let list = dir.join("series");
        let text = fs::read_to_string(&list).map_err(io_err(&list))?;
        let patches = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|name| Patch::load(&dir.join(name)))
            .collect::<Result<_>>()?;
        Ok(Self { patches })
    }

    /// Files the build script should watch: the series list and every patch.
    pub fn inputs(dir: &Path) -> Vec<PathBuf> {
        let mut out = vec![dir.join("series")];
        if let Ok(s) = Self::load(dir) {
            out.extend(s.patches.iter().map(|p| dir.join(&p.name)));
        }
        out
    }

    /// Short identity of the whole series: the first 12 hex digits of the
    /// SHA-256 over every patch's name and hash, in order. Empty series: `None`.
    pub fn short_hash(&self) -> Option<String> {
        if self.patches.is_empty() {
            return None;
        }
        let list: String = self
            .patches
            .iter()
            .map(|p| format!("{}  {}\n", p.sha256, p.name))
            .collect();
        Some(tree::sha256_hex(list.as_bytes())[..12].to_string())
    }

    /// Applies every patch in order; stops at the first that fails.
    pub fn apply(&self, overlay: &mut Overlay) -> Result<()> {
        self.patches.iter().try_for_each(|p| p.apply(overlay))
    }

    /// Tries every patch in order and reports each one, without stopping:
    /// a patch that applies is applied, one the tree already has
    /// ([`Status::AlreadyApplied`]) is left out, and a conflicting one is
    /// skipped, so later patches are still tried.
    pub fn check(&self, overlay: &mut Overlay) -> Vec<Outcome> {
        self.patches
            .iter()
            .map(|p| Outcome {
                name: p.name.clone(),
                status: p.try_apply(overlay),
            })
            .collect()
    }

    /// Renders the `series` file listing these patches after `comments`
    /// (lines written as they are, normally `# ...`).
    pub fn list_text(&self, comments: &[&str]) -> String {
        let names = self.patches.iter().map(|p| p.name.as_str());
        comments
            .iter()
            .copied()
            .chain(names)
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

impl Patch {
    /// Reads one patch file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = fs::read(path).map_err(io_err(path))?;
        let sha256 = tree::sha256_hex(&bytes);
        let text = String::from_utf8(bytes).map_err(|_| Error::BadPatch {
            patch: name.clone(),
            message: "not UTF-8 text".into(),
        })?;
        Ok(Self { name, text, sha256 })
    }

    /// A patch from text, for tests and tools.
    pub fn from_text(name: &str, text: &str) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            sha256: tree::sha256_hex(text.as_bytes()),
        }
    }

    /// The `Subject:` line of the patch header, without any `[PATCH n/m]` prefix
    /// (the first line only, as written; [`Patch::header`] decodes it fully).
    pub fn subject(&self) -> &str {
        let subject = self
            .text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("");
        mail::strip_patch_prefix(subject)
    }

    /// The commit this patch describes: author, date, subject and message.
    pub fn header(&self) -> Result<Header> {
        Header::parse(&self.text).map_err(|message| self.bad(format!("header: {message}")))
    }

    /// Applies the patch to `overlay`. On failure `overlay` is left unchanged.
    pub fn apply(&self, overlay: &mut Overlay) -> Result<()> {
        self.apply_dir(overlay, false)
    }

    /// Whether the patch applies to `overlay`, is already in it, or conflicts.
    pub fn status(&self, overlay: &Overlay) -> Status {
        self.try_apply(&mut overlay.clone())
    }

    /// Applies the patch to `overlay` when it applies; otherwise leaves
    /// `overlay` unchanged and says whether the tree already has the patch
    /// (its reverse applies) or it conflicts.
    pub fn try_apply(&self, overlay: &mut Overlay) -> Status {
        match self.apply_dir(overlay, false) {
            Ok(()) => Status::Applies,
            Err(e) => {
                let mut probe = overlay.clone();
                if self.apply_dir(&mut probe, true).is_ok() {
                    Status::AlreadyApplied
                } else {
                    Status::Conflicts(e)
                }
            }
        }
    }

    fn bad(&self, message: impl std::fmt::Display) -> Error {
        Error::BadPatch {
            patch: self.name.clone(),
            message: message.to_string(),
        }
    }

    fn mismatch(&self, file: &str, message: &str) -> Error {
        Error::FileMismatch {
            patch: self.name.clone(),
            file: file.into(),
            message: message.into(),
        }
    }

    /// Applies forwards or in reverse. All files are computed first, then written,
    /// so a failure leaves `overlay` as it was.
    fn apply_dir(&self, overlay: &mut Overlay, reverse: bool) -> Result<()> {
        let mut results: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        let mut seen_any = false;
        for file in PatchSet::parse(self.text.as_str(), ParseOptions::gitdiff()) {
            let file = file.map_err(|e| self.bad(e))?;
            seen_any = true;
            let op = file.operation().strip_prefix(1);
            let text = file
                .patch()
                .as_text()
                .ok_or_else(|| self.bad("binary patches are not supported"))?;
            let (from, to) = match &op {
                FileOperation::Create(p) => (None, Some(p.to_string())),
                FileOperation::Delete(p) => (Some(p.to_string()), None),
                FileOperation::Modify { original, modified } => {
                    (Some(original.to_string()), Some(modified.to_string()))
                }
                FileOperation::Rename { from, to } => {
                    (Some(from.to_string()), Some(to.to_string()))
                }
                FileOperation::Copy { .. } => {
                    return Err(self.bad("copy operations are not supported"));
                }
            };
            let (from, to, hunks) = if reverse {
                (to, from, text.reverse())
            } else {
                (from, to, text.clone())
            };
            let display = to.clone().or_else(|| from.clone()).unwrap_or_default();
            let base = match &from {
                Some(rel) => {
                    let found = results
                        .iter()
                        .rev()
                        .find(|(p, _)| p == rel)
                        .map(|(_, b)| b.clone());
                    let bytes = match found {
                        Some(b) => b,
                        None => overlay.read(rel)?,
                    };
                    let bytes = bytes
                        .ok_or_else(|| self.mismatch(rel, "file does not exist in the tree"))?;
                    String::from_utf8(bytes)
                        .map_err(|_| self.mismatch(rel, "file is not UTF-8 text"))?
                }
                None => {
                    if overlay.read(&display)?.is_some() {
                        return Err(self.mismatch(&display, "file to be created already exists"));
                    }
                    String::new()
                }
            };
            let patched = diffy::apply(&base, &hunks).map_err(|e| {
                // diffy reports the failing hunk only through its message ("... hunk #N").
                let hunk: usize = e
                    .to_string()
                    .rsplit('#')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let range = hunks
                    .hunks()
                    .get(hunk.saturating_sub(1))
                    .map(|h| h.old_range());
                Error::HunkFailed {
                    patch: self.name.clone(),
                    file: display.clone(),
                    hunk,
                    old_start: range.map_or(0, |r| r.start()),
                    old_len: range.map_or(0, |r| r.len()),
                }
            })?;
            if to.is_none() && !patched.is_empty() {
                return Err(self.mismatch(
                    &display,
                    "file to be deleted has contents the patch does not remove",
                ));
            }
            if let Some(from) = &from
                && to.as_ref() != Some(from)
            {
                results.push((from.clone(), None));
            }
            if let Some(to) = to {
                results.push((to, Some(patched.into_bytes())));
            }
        }
        if !seen_any {
            return Err(self.bad("contains no file diffs"));
        }
        for (rel, change) in results {
            match change {
                Some(bytes) => overlay.write(&rel, bytes),
                None => overlay.remove(&rel),
            }
        }
        Ok(())
    }
}
