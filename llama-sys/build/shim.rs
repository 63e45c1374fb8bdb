//! The exception-catching C++ shim (`shim/`), compiled with `cc` and linked
//! before llama so its references resolve.

use std::path::PathBuf;

pub fn compile(include_dirs: &[PathBuf]) {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("shim");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("c++17")
        .file(dir.join("shim.cpp"))
        .opt_level(2)
        .warnings(false);
    for d in include_dirs {
        b.include(d);
    }
    b.compile("llama_sys_shim");
}
