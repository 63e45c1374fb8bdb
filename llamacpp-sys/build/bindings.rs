//! bindgen over llama.h and the ggml headers the workspace uses, allow-listed.

use std::path::PathBuf;

use crate::config::Config;

pub fn generate(cfg: &Config, include_dirs: &[PathBuf]) -> Result<(), String> {
    let wrapper =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("wrapper.h");
    println!("cargo:rerun-if-changed={}", wrapper.display());
    let mut b = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .allowlist_function("(llama|ggml|gguf)_.*")
        .allowlist_type("(llama|ggml|gguf)_.*")
        .allowlist_var("(LLAMA|GGML|GGUF)_.*")
        // Integer constants, never Rust enums: a C value outside the listed
        // variants must not be undefined behaviour on the Rust side.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .layout_tests(true)
        .derive_default(true)
        .generate_comments(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for dir in include_dirs {
        b = b.clang_arg(format!("-I{}", dir.display()));
    }
    if cfg.features.rpc {
        b = b.clang_arg("-DLLAMA_SYS_RPC");
    }
    let out = cfg.out_dir.join("bindings.rs");
    b.generate()
        .map_err(|e| {
            format!("bindgen failed: {e} (is libclang installed? see the README's prerequisites)")
        })?
        .write_to_file(&out)
        .map_err(|e| format!("{}: {e}", out.display()))
}
