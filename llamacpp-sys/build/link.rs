//! Link lines, derived from the libraries the build actually installed.

use crate::cmake_build::Built;
use crate::config::Config;

/// ggml's libraries must come after llama, with ggml-base last (static archives
/// resolve left to right).
fn link_order(libs: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let rank = |name: &str| match name {
        "llama" => 0,
        "ggml" => 1,
        "ggml-base" => 3,
        _ => 2,
    };
    out.extend(libs.iter().map(String::as_str));
    out.sort_by_key(|n| (rank(n), *n));
    out
}

pub fn emit(cfg: &Config, built: &Built) -> Result<(), String> {
    let kind = if built.dynamic { "dylib" } else { "static" };
    if !built.libs.iter().any(|l| l == "llama") {
        return Err(format!("no llama library in {}", built.lib_dir.display()));
    }
    println!("cargo:rustc-link-search=native={}", built.lib_dir.display());
    for lib in link_order(&built.libs) {
        println!("cargo:rustc-link-lib={kind}={lib}");
    }
    // Metadata for dependents' build scripts (DEP_LLAMACPP_*): they add the rpath
    // to their own binaries, which this crate's link args cannot reach.
    println!("cargo:lib_dir={}", built.lib_dir.display());
    println!("cargo:dynamic={}", u8::from(built.dynamic));
    if built.dynamic {
        println!(
            "cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{}",
            built.lib_dir.display()
        );
        return Ok(());
    }
    let f = cfg.features;
    let apple = cfg.target_os == "macos" || cfg.target_os == "ios";
    if apple {
        println!("cargo:rustc-link-lib=c++");
        for fw in ["Foundation", "Accelerate", "Metal", "MetalKit"] {
            println!("cargo:rustc-link-lib=framework={fw}");
        }
    } else if cfg.target_os != "windows" {
        println!("cargo:rustc-link-lib=stdc++");
        println!("cargo:rustc-link-lib=m");
        println!("cargo:rustc-link-lib=pthread");
        println!("cargo:rustc-link-lib=dl");
    }
    if f.openmp && !apple && cfg.target_env == "gnu" {
        println!("cargo:rustc-link-lib=gomp");
    }
    if f.cuda {
        let cuda = cfg
            .cuda_path
            .clone()
            .unwrap_or_else(|| "/usr/local/cuda".into());
        println!(
            "cargo:rustc-link-search=native={}",
            cuda.join("lib64").display()
        );
        println!(
            "cargo:rustc-link-search=native={}",
            cuda.join("lib64/stubs").display()
        );
        for lib in ["cudart", "cublas", "cublasLt", "cuda"] {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
    if f.vulkan {
        println!("cargo:rustc-link-lib=dylib=vulkan");
    }
    Ok(())
}
