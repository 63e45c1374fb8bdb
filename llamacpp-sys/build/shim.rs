//! The exception-catching C++ shim (`shim/`), compiled with `cc` and linked
//! before llama so its references resolve.
//!
//! With a llama.cpp source tree at hand it also compiles the tree's JSON-schema
//! converter (`common/json-schema-to-grammar.cpp` and the four files it needs),
//! but not the rest of `common/`: that library drags in HTTP, logging and
//! argument parsing. Without a tree (`LLAMACPP_SYS_PREFIX` and no vendored source) the
//! shim's converter entry point returns an error instead.

use std::path::{Path, PathBuf};

/// The `common/` files the converter needs; `common.cpp` is replaced by
/// `shim/common_strings.cpp` (the three string helpers it provides).
const COMMON_FILES: [&str; 5] = [
    "json-schema-to-grammar.cpp",
    "json-schema.cpp",
    "json.cpp",
    "trie.cpp",
    "unicode.cpp",
];

pub fn compile(include_dirs: &[PathBuf], llama_src: Option<&Path>) {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("shim");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++17")
        .file(dir.join("shim.cpp"))
        .file(dir.join("boundary.cpp"))
        .file(dir.join("json_schema.cpp"))
        .opt_level(2)
        .warnings(false);
    if b.get_compiler().is_like_msvc() {
        // `cc` passes no /EHsc, and without it MSVC runs no destructors while an exception
        // unwinds; /utf-8 and /bigobj as llama.cpp's CMake passes them (nlohmann/json).
        b.flag("/EHsc").flag("/utf-8").flag("/bigobj");
    }
    for d in include_dirs {
        b.include(d);
    }
    let common = llama_src
        .map(|src| src.join("common"))
        .filter(|c| COMMON_FILES.iter().all(|f| c.join(f).is_file()));
    if let (Some(common), Some(src)) = (common, llama_src) {
        for f in COMMON_FILES {
            b.file(common.join(f));
        }
        b.file(dir.join("common_strings.cpp"))
            .include(&common)
            // nlohmann/json.hpp, which common/json.cpp wraps.
            .include(src.join("vendor"))
            .define("LLAMACPP_SYS_JSON_SCHEMA", None);
    } else {
        println!(
            "cargo:warning=llamacpp-sys: no llama.cpp common/ sources; json_schema_to_grammar will return an error"
        );
    }
    b.compile("llama_sys_shim");
}
