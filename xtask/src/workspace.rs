//! Where the tool finds the pin, the pristine tree and the series.

use std::path::{Path, PathBuf};

use llamacpp_patchkit::Result;
use llamacpp_patchkit::series::Series;
use llamacpp_patchkit::upstream::Vendor;

/// The vendor and patch directories the tool works on.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Holds `UPSTREAM` and `llama.cpp/`.
    pub vendor: PathBuf,
    /// Holds `series` and the patch files.
    pub patches: PathBuf,
}

impl Paths {
    /// The given directories, or the ones the build uses: `$LLAMACPP_SYS_VENDOR_DIR`
    /// (else the workspace's `vendor/`) and the workspace's `patches/`.
    pub fn new(vendor: Option<PathBuf>, patches: Option<PathBuf>) -> Self {
        let root = workspace_root();
        let vendor = vendor
            .or_else(|| {
                std::env::var_os("LLAMACPP_SYS_VENDOR_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| root.join("vendor"));
        Self {
            vendor,
            patches: patches.unwrap_or_else(|| root.join("patches")),
        }
    }

    /// The pin and its verified pristine tree, fetched first if it is absent.
    pub fn pristine(&self) -> Result<Vendor> {
        let vendor = Vendor::open(&self.vendor)?;
        let scratch = scratch_dir()?;
        vendor.ensure(&cargo(), scratch.path())?;
        Ok(vendor)
    }

    /// The patch series.
    pub fn series(&self) -> Result<Series> {
        Series::load(&self.patches)
    }
}

/// The workspace this tool was built in.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
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
