//! Where the tool finds the pin, the pristine tree and the series.

use std::path::{Path, PathBuf};

use llamacpp_patchkit::Result;
use llamacpp_patchkit::series::Series;
use llamacpp_patchkit::upstream::{Vendor, default_cache_root};

/// The pin, source cache and patch directory the tool works on.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The pin file (`UPSTREAM`).
    pub pin: PathBuf,
    /// Where fetched trees are kept, one entry per pin.
    pub source_cache: PathBuf,
    /// Holds `series` and the patch files.
    pub patches: PathBuf,
}

impl Paths {
    /// The given paths, or the ones the build uses: `llamacpp-sys/UPSTREAM`,
    /// `$LLAMACPP_SYS_SOURCE_CACHE` (else the cache under Cargo's home) and
    /// `llamacpp-sys/patches/`.
    pub fn new(
        pin: Option<PathBuf>,
        source_cache: Option<PathBuf>,
        patches: Option<PathBuf>,
    ) -> Result<Self> {
        let sys = sys_crate_dir();
        let source_cache = match source_cache.or_else(|| {
            std::env::var_os("LLAMACPP_SYS_SOURCE_CACHE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        }) {
            Some(dir) => dir,
            None => default_cache_root()?,
        };
        Ok(Self {
            pin: pin.unwrap_or_else(|| sys.join("UPSTREAM")),
            source_cache,
            patches: patches.unwrap_or_else(|| sys.join("patches")),
        })
    }

    /// The pin and its verified pristine tree, fetched first if it is absent.
    pub fn pristine(&self) -> Result<Vendor> {
        let vendor = Vendor::open(&self.pin, &self.source_cache)?;
        let scratch = scratch_dir()?;
        vendor.ensure(&cargo(), scratch.path())?;
        Ok(vendor)
    }

    /// The patch series.
    pub fn series(&self) -> Result<Series> {
        Series::load(&self.patches)
    }
}

/// `llamacpp-sys/` of the workspace this tool was built in.
pub fn sys_crate_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).join("llamacpp-sys")
}

/// The cargo that runs us (`cargo patches`), else the one on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into())
}

/// A temporary directory, removed when dropped.
pub fn scratch_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("patches-")
        .tempdir()
        .map_err(|source| llamacpp_patchkit::Error::Io {
            path: std::env::temp_dir(),
            source,
        })
}
