//! An in-memory set of changes over a read-only base tree.
//!
//! Patches are applied to an [`Overlay`], never to the base, so the pristine
//! the cached pristine tree stays untouched and a failed series leaves nothing behind.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{Result, io_err, tree};

/// A base directory plus the files written or removed on top of it.
#[derive(Debug, Clone)]
pub struct Overlay {
    base: PathBuf,
    /// `Some(bytes)`: the file's new contents; `None`: the file was removed.
    changes: BTreeMap<String, Option<Vec<u8>>>,
}

impl Overlay {
    /// An overlay with no changes over `base`.
    pub fn new(base: impl Into<PathBuf>) -> Self {
        Self {
            base: base.into(),
            changes: BTreeMap::new(),
        }
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The current contents of `rel`, or `None` if the file does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        if let Some(change) = self.changes.get(rel) {
            return Ok(change.clone());
        }
        let path = self.base.join(rel);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Sets the contents of `rel`.
    pub fn write(&mut self, rel: &str, bytes: Vec<u8>) {
        self.changes.insert(rel.to_string(), Some(bytes));
    }

    /// Removes `rel`.
    pub fn remove(&mut self, rel: &str) {
        self.changes.insert(rel.to_string(), None);
    }

    /// Relative paths of the files this overlay changed, created or removed.
    pub fn changed_paths(&self) -> impl Iterator<Item = &str> {
        self.changes.keys().map(String::as_str)
    }

    /// Makes `dest` hold the base tree with this overlay's changes applied,
    /// writing only files whose contents differ (see [`tree::sync`]).
    pub fn sync_to(&self, dest: &Path) -> Result<usize> {
        let mut files: BTreeMap<String, Cow<'_, [u8]>> = BTreeMap::new();
        for rel in tree::list_files(&self.base)? {
            if self.changes.contains_key(&rel) {
                continue;
            }
            let path = self.base.join(&rel);
            files.insert(rel, Cow::Owned(fs::read(&path).map_err(io_err(&path))?));
        }
        for (rel, change) in &self.changes {
            if let Some(bytes) = change {
                files.insert(rel.clone(), Cow::Borrowed(bytes));
            }
        }
        tree::sync(dest, files)
    }
}
