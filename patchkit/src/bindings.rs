//! The one bindgen configuration: the build script generates the crate's
//! bindings with it, and `cargo patches bindings` the pregenerated copy that a
//! docs build (no network, no C++ toolchain) compiles instead.

use std::path::{Path, PathBuf};

/// What differs between the two uses of [`builder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Declare `ggml-rpc.h` too (the `rpc` feature).
    pub rpc: bool,
    /// Copy the headers' comments into the output (the build does; the committed
    /// docs copy does not, so it carries no upstream prose).
    pub comments: bool,
    /// Emit layout tests (checked against the real headers in every build; a
    /// docs build compiles no tests).
    pub layout_tests: bool,
}

/// The header bindgen reads: `llamacpp-sys/wrapper.h`.
pub fn wrapper(sys_crate_dir: &Path) -> PathBuf {
    sys_crate_dir.join("wrapper.h")
}

/// bindgen over `wrapper.h` with `include_dirs` (the tree's `include/` and
/// `ggml/include/`), allow-listed to the llama, ggml and gguf C APIs.
pub fn builder(wrapper: &Path, include_dirs: &[PathBuf], opts: Options) -> bindgen::Builder {
    let mut b = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .allowlist_function("(llama|ggml|gguf)_.*")
        .allowlist_type("(llama|ggml|gguf)_.*")
        .allowlist_var("(LLAMA|GGML|GGUF)_.*")
        // Integer constants, never Rust enums: a C value outside the listed
        // variants must not be undefined behaviour on the Rust side.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .layout_tests(opts.layout_tests)
        .derive_default(true)
        .generate_comments(opts.comments);
    for dir in include_dirs {
        b = b.clang_arg(format!("-I{}", dir.display()));
    }
    if opts.rpc {
        b = b.clang_arg("-DLLAMACPP_SYS_RPC");
    }
    b
}

/// The include directories of a llama.cpp tree.
pub fn include_dirs(tree: &Path) -> Vec<PathBuf> {
    vec![tree.join("include"), tree.join("ggml/include")]
}
