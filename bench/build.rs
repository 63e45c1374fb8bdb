//! Adds the rpath to llama-sys's shared libraries (when it links them
//! dynamically) to this package's tests, examples and benches: llama-sys's own
//! link arguments do not reach a dependent's binaries.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_DYNAMIC");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_LIB_DIR");
    if std::env::var("DEP_LLAMA_DYNAMIC").as_deref() == Ok("1")
        && let Ok(dir) = std::env::var("DEP_LLAMA_LIB_DIR")
    {
        println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{dir}");
    }
}
