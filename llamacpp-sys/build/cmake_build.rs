//! The CMake stage: one feature-to-option table, release C++ in every profile.

use std::path::{Path, PathBuf};

use crate::config::{Config, Variant};
use crate::link_plan::{self, Target};
use crate::source::Tree;

/// What a build (or a prebuilt install) provides.
pub struct Built {
    pub lib_dir: PathBuf,
    pub include_dirs: Vec<PathBuf>,
    /// Every file name in `lib_dir`; `link_plan::library` picks the libraries.
    pub files: Vec<String>,
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
        .define("GGML_OPENMP", on(link_plan::openmp(&cfg.target, f.openmp)))
        .define("GGML_NATIVE", on(f.native))
        .define("GGML_RPC", on(f.rpc))
        // ggml-rpc turns RDMA on by itself when libibverbs is installed; nothing here links it,
        // and an RDMA path nobody asked for must not appear because a host has the library
        .define("GGML_RPC_RDMA", "OFF")
        .define("GGML_BLAS", "OFF")
        .define("GGML_CCACHE", "ON");
    if f.openmp && !link_plan::openmp(&cfg.target, true) {
        println!(
            "cargo:warning=llamacpp-sys: no OpenMP on Apple targets; ggml's thread pool is used"
        );
    }
    for (key, value) in link_plan::cmake_defines(&cfg.target, dynamic) {
        c.define(key, value);
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
    if let Some(arg) =
        (cfg.parallel.as_deref()).and_then(|l| link_plan::parallel_arg(&cfg.target, l))
    {
        c.build_arg(arg);
    }
    // ccache keys on paths; relative to OUT_DIR the two variants' trees are
    // laid out alike, so one variant's objects serve the other's unchanged files.
    c.env("CCACHE_BASEDIR", &cfg.out_dir);
    c.build();
    let lib_dir = lib_dir(&root);
    Ok(Built {
        files: list(&lib_dir)?,
        lib_dir,
        include_dirs: vec![tree.dir.join("include"), tree.dir.join("ggml/include")],
        dynamic,
    })
}

/// Compiler flags that keep `-march=native` from enabling ggml's AMX kernels.
///
/// The pinned AMX code fills its tile configuration on the stack and GCC drops those stores
/// (the `ldtilecfg` builtin is not seen as reading them), so the first tile instruction
/// raises SIGILL on an AMX host: a native build would crash on any model with a dense
/// Q4_0/Q4_K/Q8_0 weight. Both variants get the same flags, so comparisons stay fair; the
/// repacked AVX-512 kernels serve those weights instead.
fn native_amx_off(cfg: &Config) -> Vec<&'static str> {
    let x86 = matches!(cfg.target.arch.as_str(), "x86" | "x86_64");
    if !cfg.features.native || !x86 || cfg.target.env == "msvc" {
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
    /// A prebuilt llama.cpp install (`LLAMACPP_SYS_PREFIX`) with `lib/` (or `lib64/`) and
    /// `include/`; on Windows a shared install has its DLLs in `bin/`.
    pub fn prebuilt(target: &Target, prefix: &Path) -> Result<Built, String> {
        let dll = prefix.join("bin").join("llama.dll").is_file();
        let found = ["lib", "lib64"].iter().find_map(|d| {
            let dir = prefix.join(d);
            let files = list(&dir).ok()?;
            let dynamic = link_plan::prebuilt_dynamic(target, &files, dll)?;
            Some((dir, files, dynamic))
        });
        let (lib_dir, files, dynamic) = found.ok_or_else(|| {
            format!(
                "LLAMACPP_SYS_PREFIX={}: no llama library in lib/ or lib64/",
                prefix.display()
            )
        })?;
        Ok(Built {
            lib_dir,
            include_dirs: vec![prefix.join("include")],
            files,
            dynamic,
        })
    }
}

/// `lib/`, or `lib64/` where only that exists.
fn lib_dir(root: &Path) -> PathBuf {
    if root.join("lib64").is_dir() && !root.join("lib").is_dir() {
        root.join("lib64")
    } else {
        root.join("lib")
    }
}

/// The file names in `dir`, sorted.
fn list(dir: &Path) -> Result<Vec<String>, String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    Ok(files)
}
