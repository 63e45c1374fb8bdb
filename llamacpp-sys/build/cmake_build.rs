//! The CMake stage: one feature-to-option table, release C++ in every profile.

use std::path::{Path, PathBuf};

use crate::config::{Config, Variant};
use crate::source::Tree;

/// What a build (or a prebuilt install) provides.
pub struct Built {
    pub lib_dir: PathBuf,
    pub include_dirs: Vec<PathBuf>,
    /// Library names found in `lib_dir` (without `lib` prefix and extension).
    pub libs: Vec<String>,
    pub dynamic: bool,
}

fn on(b: bool) -> &'static str {
    if b { "ON" } else { "OFF" }
}

/// Configures, builds and installs `tree` into `OUT_DIR/<variant>`.
pub fn build(cfg: &Config, tree: &Tree, variant: Variant, dynamic: bool) -> Result<Built, String> {
    let f = cfg.features;
    let root = cfg.out_dir.join(variant.name());
    let mut c = cmake::Config::new(&tree.dir);
    c.out_dir(&root)
        // Optimised C++ even in debug Rust profiles: an unoptimised ggml is unusably slow.
        .profile("Release")
        // Cargo's C flags (-O0 -g in debug) would fight the Release flags.
        .no_default_flags(true)
        .define("CMAKE_INSTALL_LIBDIR", "lib")
        .define("CMAKE_POSITION_INDEPENDENT_CODE", "ON")
        .define("BUILD_SHARED_LIBS", on(dynamic))
        .define("LLAMA_BUILD_COMMON", "OFF")
        .define("LLAMA_BUILD_TESTS", "OFF")
        .define("LLAMA_BUILD_TOOLS", "OFF")
        .define("LLAMA_BUILD_EXAMPLES", "OFF")
        .define("LLAMA_BUILD_SERVER", "OFF")
        .define("LLAMA_BUILD_APP", "OFF")
        .define("LLAMA_BUILD_UI", "OFF")
        .define("LLAMA_OPENSSL", "OFF")
        .define("LLAMA_BUILD_COMMIT", &tree.build_commit)
        .define("LLAMA_BUILD_NUMBER", "0")
        // ggml asks git for a commit id; OUT_DIR sits inside the user's checkout, whose
        // HEAD would then label the library. "OFF" makes find_program skip the search.
        .define("GIT_EXE", "OFF")
        .define("GGML_BACKEND_DL", "OFF")
        .define("GGML_CUDA", on(f.cuda))
        .define("GGML_VULKAN", on(f.vulkan))
        .define("GGML_METAL", on(f.metal))
        .define("GGML_METAL_EMBED_LIBRARY", on(f.metal))
        .define("GGML_OPENMP", on(f.openmp))
        .define("GGML_NATIVE", on(f.native))
        .define("GGML_RPC", on(f.rpc))
        .define("GGML_BLAS", "OFF")
        .define("GGML_CCACHE", "ON");
    if dynamic {
        // Installed libraries find their siblings next to themselves.
        let origin = if cfg.target_os == "macos" {
            "@loader_path"
        } else {
            "$ORIGIN"
        };
        c.define("CMAKE_INSTALL_RPATH", origin);
    }
    for flag in native_amx_off(cfg) {
        c.cflag(flag).cxxflag(flag);
    }
    if let Some(arch) = &cfg.cuda_architectures {
        c.define("CMAKE_CUDA_ARCHITECTURES", arch);
    }
    for arg in &cfg.cmake_args {
        c.configure_arg(arg);
    }
    if let Some(level) = &cfg.parallel {
        c.build_arg(format!("-j{level}"));
    }
    // ccache keys on paths; relative to OUT_DIR the two variants' trees are
    // laid out alike, so one variant's objects serve the other's unchanged files.
    c.env("CCACHE_BASEDIR", &cfg.out_dir);
    c.build();
    scan(
        root,
        vec![tree.dir.join("include"), tree.dir.join("ggml/include")],
        dynamic,
    )
}

/// Compiler flags that keep `-march=native` from enabling ggml's AMX kernels.
///
/// The pinned AMX code fills its tile configuration on the stack and GCC drops those stores
/// (the `ldtilecfg` builtin is not seen as reading them), so the first tile instruction
/// raises SIGILL on an AMX host: a native build would crash on any model with a dense
/// Q4_0/Q4_K/Q8_0 weight. Both variants get the same flags, so comparisons stay fair; the
/// repacked AVX-512 kernels serve those weights instead.
fn native_amx_off(cfg: &Config) -> Vec<&'static str> {
    let x86 = matches!(cfg.target_arch.as_str(), "x86" | "x86_64");
    if !cfg.features.native || !x86 || cfg.target_env == "msvc" {
        return Vec::new();
    }
    let mut probe = cc::Build::new();
    probe.cpp(true).cargo_warnings(false);
    ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]
        .into_iter()
        .filter(|f| probe.is_flag_supported(f).unwrap_or(false))
        .collect()
}

impl Built {
    /// A prebuilt llama.cpp install (`LLAMACPP_SYS_PREFIX`) with `lib/` (or `lib64/`) and `include/`.
    pub fn prebuilt(prefix: &Path) -> Result<Built, String> {
        let lib = ["lib", "lib64"].iter().map(|d| prefix.join(d)).find(|d| {
            d.join("libllama.so").exists()
                || d.join("libllama.a").exists()
                || d.join("libllama.dylib").exists()
                || d.join("llama.lib").exists()
        });
        let lib = lib.ok_or_else(|| {
            format!(
                "LLAMACPP_SYS_PREFIX={}: no libllama in lib/ or lib64/",
                prefix.display()
            )
        })?;
        let dynamic = !lib.join("libllama.a").exists() && !lib.join("llama.lib").exists();
        let mut b = scan(prefix.to_path_buf(), vec![prefix.join("include")], dynamic)?;
        b.lib_dir = lib;
        Ok(b)
    }
}

fn scan(root: PathBuf, include_dirs: Vec<PathBuf>, dynamic: bool) -> Result<Built, String> {
    let lib_dir = if root.join("lib64").is_dir() && !root.join("lib").is_dir() {
        root.join("lib64")
    } else {
        root.join("lib")
    };
    let mut libs: Vec<String> = std::fs::read_dir(&lib_dir)
        .map_err(|e| format!("{}: {e}", lib_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_prefix("lib").unwrap_or(&name);
            let stem = stem
                .strip_suffix(if dynamic { ".so" } else { ".a" })
                .or_else(|| {
                    if dynamic {
                        stem.strip_suffix(".dylib")
                    } else {
                        stem.strip_suffix(".lib")
                    }
                })?;
            (stem.starts_with("ggml") || stem == "llama").then(|| stem.to_string())
        })
        .collect();
    libs.sort();
    libs.dedup();
    Ok(Built {
        lib_dir,
        include_dirs,
        libs,
        dynamic,
    })
}
