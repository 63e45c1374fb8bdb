//! Build configuration: Cargo features, environment variables and target facts.
//!
//! Every variable is read through [`env`], which also emits
//! `rerun-if-env-changed`, so nothing read here can go stale.

use std::path::PathBuf;

use crate::link_plan::{Target, split_args};

/// Which source the C++ libraries are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The pinned upstream tree with `patches/series` (of this package) applied (the default).
    Patched,
    /// The same tree with no patch applied (`LLAMACPP_SYS_PATCHES=none`).
    Upstream,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Patched => "patched",
            Variant::Upstream => "upstream",
        }
    }

    pub fn other(self) -> Variant {
        match self {
            Variant::Patched => Variant::Upstream,
            Variant::Upstream => Variant::Patched,
        }
    }
}

/// Cargo features of this crate.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub cuda: bool,
    pub vulkan: bool,
    pub metal: bool,
    pub openmp: bool,
    pub native: bool,
    pub rpc: bool,
    pub dynamic: bool,
    pub side_by_side: bool,
}

#[derive(Debug)]
pub struct Config {
    pub out_dir: PathBuf,
    /// This package's directory (read only: nothing is written into it).
    pub manifest_dir: PathBuf,
    /// The pin file, `UPSTREAM`, shipped in this package.
    pub pin_file: PathBuf,
    /// The series, `patches/`, shipped in this package.
    pub patches_dir: PathBuf,
    /// Where fetched upstream trees are kept (`LLAMACPP_SYS_SOURCE_CACHE`, else
    /// under Cargo's home); never inside this package.
    pub source_cache: PathBuf,
    /// `DOCS_RS`: no network and no C++ toolchain; use the pregenerated bindings.
    pub docs_only: bool,
    pub cargo: PathBuf,
    /// The target's facts, as the platform decisions in `link_plan` take them.
    pub target: Target,
    pub features: Features,
    pub variant: Variant,
    /// `LLAMACPP_SYS_PREFIX`: link this prebuilt install instead of building.
    pub prefix: Option<PathBuf>,
    /// `CMAKE_BUILD_PARALLEL_LEVEL`, when set.
    pub parallel: Option<String>,
    /// `LLAMACPP_SYS_CMAKE_ARGS`: extra `-D` arguments, whitespace-separated; quotes
    /// keep spaces (`"-DX=C:\Program Files\y"`), see `link_plan::split_args`.
    pub cmake_args: Vec<String>,
    /// `CMAKE_CUDA_ARCHITECTURES`, passed through when set.
    pub cuda_architectures: Option<String>,
    /// `CUDA_PATH`, for the CUDA runtime's link path.
    pub cuda_path: Option<PathBuf>,
    /// `VULKAN_SDK`, for the Vulkan loader's link path.
    pub vulkan_sdk: Option<PathBuf>,
}

/// `LLAMACPP_SYS_SOURCE_CACHE`, else `<Cargo home>/llamacpp-sys/sources`.
fn source_cache() -> Result<PathBuf, String> {
    // Read through `env` only so that a change reruns the build; `home` reads it too.
    let _ = env("CARGO_HOME");
    match env("LLAMACPP_SYS_SOURCE_CACHE") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => llamacpp_patchkit::upstream::default_cache_root().map_err(|e| {
            format!("{e}: set LLAMACPP_SYS_SOURCE_CACHE to a directory for the upstream source")
        }),
    }
}

/// Reads an environment variable and asks Cargo to rerun when it changes.
pub fn env(key: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={key}");
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn cargo_env(key: &str) -> Result<String, String> {
    std::env::var(key).map_err(|_| format!("{key} is not set (not running under Cargo?)"))
}

/// The target facts: Cargo's `CARGO_CFG_TARGET_*`, plus the variables that `cc` (for the
/// shim) and CMake read on their own, declared here so that a change reruns the build.
fn target() -> Result<Target, String> {
    let os = cargo_env("CARGO_CFG_TARGET_OS")?;
    let vendor = std::env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    // The variable rustc, `cc` and CMake each take the Apple deployment target from.
    let deployment_var = match os.as_str() {
        "macos" => Some("MACOSX_DEPLOYMENT_TARGET"),
        "ios" => Some("IPHONEOS_DEPLOYMENT_TARGET"),
        "tvos" => Some("TVOS_DEPLOYMENT_TARGET"),
        "watchos" => Some("WATCHOS_DEPLOYMENT_TARGET"),
        "visionos" => Some("XROS_DEPLOYMENT_TARGET"),
        _ => None,
    };
    println!("cargo:rerun-if-env-changed=CXXSTDLIB");
    // ggml's x86 baseline without GGML_NATIVE drops to SSE2 when this is set (reproducible builds).
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    Ok(Target {
        deployment_target: deployment_var.filter(|_| vendor == "apple").and_then(env),
        os,
        env: std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default(),
        arch: cargo_env("CARGO_CFG_TARGET_ARCH")?,
        vendor,
        crt_static: features.split(',').any(|f| f == "crt-static"),
        // Unlike `env`, an empty value counts: `cc` then links no C++ library.
        cxx_stdlib: std::env::var("CXXSTDLIB").ok(),
    })
}

fn feature(name: &str) -> bool {
    std::env::var_os(format!(
        "CARGO_FEATURE_{}",
        name.to_uppercase().replace('-', "_")
    ))
    .is_some()
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        let manifest_dir = PathBuf::from(cargo_env("CARGO_MANIFEST_DIR")?);
        let variant = match env("LLAMACPP_SYS_PATCHES").as_deref() {
            None | Some("series") | Some("all") => Variant::Patched,
            Some("none") => Variant::Upstream,
            Some(other) => {
                return Err(format!(
                    "LLAMACPP_SYS_PATCHES={other:?}: expected `none` (upstream) or unset/`series` (patched)"
                ));
            }
        };
        let side_by_side = feature("side-by-side");
        Ok(Self {
            out_dir: PathBuf::from(cargo_env("OUT_DIR")?),
            manifest_dir: manifest_dir.clone(),
            pin_file: manifest_dir.join("UPSTREAM"),
            patches_dir: manifest_dir.join("patches"),
            source_cache: source_cache()?,
            docs_only: env("DOCS_RS").is_some() || feature("docs-only"),
            cargo: PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
            target: target()?,
            features: Features {
                cuda: feature("cuda"),
                vulkan: feature("vulkan"),
                metal: feature("metal"),
                openmp: feature("openmp"),
                native: feature("native"),
                rpc: feature("rpc"),
                dynamic: feature("dynamic-link") || side_by_side,
                side_by_side,
            },
            variant,
            prefix: env("LLAMACPP_SYS_PREFIX").map(PathBuf::from),
            parallel: env("CMAKE_BUILD_PARALLEL_LEVEL"),
            cmake_args: env("LLAMACPP_SYS_CMAKE_ARGS")
                .map(|s| split_args(&s))
                .unwrap_or_default(),
            cuda_architectures: env("CMAKE_CUDA_ARCHITECTURES"),
            cuda_path: env("CUDA_PATH").map(PathBuf::from),
            vulkan_sdk: env("VULKAN_SDK").map(PathBuf::from),
        })
    }
}
