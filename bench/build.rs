//! Adds the rpath to llamacpp-sys's shared libraries (when it links them
//! dynamically) to this package's tests, examples and benches: llamacpp-sys's own
//! link arguments do not reach a dependent's binaries.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMACPP_DYNAMIC");
    println!("cargo:rerun-if-env-changed=DEP_LLAMACPP_LIB_DIR");
    let dynamic = std::env::var("DEP_LLAMACPP_DYNAMIC").as_deref() == Ok("1");
    if let (true, Ok(dir)) = (dynamic, std::env::var("DEP_LLAMACPP_LIB_DIR")) {
        println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{dir}");
    }
}
