//! The pinned llama.cpp source and the patch series applied on top of it.
//!
//! This crate is shared by `llamacpp-sys`'s build script and the `patches` tool
//! (`cargo patches ...`), so both see the same rules:
//!
//! - [`upstream`]: the pin file (`llamacpp-sys/UPSTREAM`) names the registry
//!   package, version and checksums; the tree is materialised into a source
//!   cache keyed by its hash (under Cargo's home by default) through
//!   `cargo vendor` and verified against the recorded tree hash.
//! - [`series`]: `llamacpp-sys/patches/series` lists `git format-patch` files that are applied,
//!   in order, to an in-memory [`overlay::Overlay`] of the pristine tree;
//!   [`mail`] reads their headers (author, date, subject, message).
//! - [`bindings`]: the bindgen configuration the build and the pregenerated
//!   docs bindings share.
//! - [`tree`]: hashing and syncing directory trees (writing only files whose
//!   contents changed, so CMake rebuilds only what a patch touched).

pub mod bindings;
pub mod mail;
pub mod overlay;
pub mod series;
pub mod tree;
pub mod upstream;

use std::path::PathBuf;

/// Everything that can go wrong while locating, verifying or patching the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was about.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The pin file (`UPSTREAM`) is missing a key or has a malformed line.
    #[error("{path}: {message}")]
    Pin {
        /// The pin file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `cargo vendor` (or another helper command) failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command line that was run.
        command: String,
        /// Its exit status and the tail of its stderr.
        message: String,
    },
    /// The source tree does not match the recorded hash.
    #[error(
        "upstream tree {dir} does not match the pin, UPSTREAM (expected tree-sha256 {expected}, found {found}){detail}\n\
         delete {dir} to have the build fetch and verify it again"
    )]
    Tampered {
        /// The tree that failed verification.
        dir: PathBuf,
        /// The recorded hash.
        expected: String,
        /// The hash of the tree on disk.
        found: String,
        /// Which files differ, when a per-file manifest is available.
        detail: String,
    },
    /// The series file names a patch that cannot be read or parsed.
    #[error("patch {patch}: {message}")]
    BadPatch {
        /// The patch file name.
        patch: String,
        /// What is wrong with it.
        message: String,
    },
    /// A hunk of a patch does not apply to the tree.
    #[error(
        "patch {patch} does not apply: {file}: hunk #{hunk} (old lines {old_start}..+{old_len}) has no matching context"
    )]
    HunkFailed {
        /// The patch file name.
        patch: String,
        /// The file (relative to the tree root) the hunk is for.
        file: String,
        /// 1-based index of the failing hunk within that file's diff.
        hunk: usize,
        /// First line of the hunk in the original file, as the patch states it.
        old_start: usize,
        /// Number of original lines the hunk covers.
        old_len: usize,
    },
    /// A patch modifies or deletes a file the tree lacks, or creates one that exists.
    #[error("patch {patch} does not apply: {file}: {message}")]
    FileMismatch {
        /// The patch file name.
        patch: String,
        /// The file (relative to the tree root).
        file: String,
        /// What did not match.
        message: String,
    },
    /// The patch tooling was asked for something it will not do (for example
    /// writing into a non-empty directory, or refreshing from a git tree that
    /// lacks the `upstream-base` tag).
    #[error("{message}")]
    Refused {
        /// What was refused, and what to do instead.
        message: String,
    },
    /// The series does not apply cleanly to a tree: some patches conflict or are
    /// already there.
    #[error(
        "the series does not apply cleanly: {conflicts} conflicting, {upstream} already upstream"
    )]
    SeriesUnclean {
        /// How many patches conflict.
        conflicts: usize,
        /// How many patches the tree already has (they reverse-apply).
        upstream: usize,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
