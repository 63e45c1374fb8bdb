//! Raw FFI bindings to a pinned llama.cpp, built from source with this
//! workspace's patch series applied (or unpatched with `LLAMACPP_SYS_PATCHES=none`).
//!
//! Everything here is `unsafe` C API; applications use the safe `llamacpp` crate.
//! [`build_info`] says what was built, and the crate's README lists the
//! features and environment variables.
//!
//! ```
//! // Which llama.cpp this binary carries.
//! println!("{} ({}), patches: {:?}", llamacpp_sys::build_info::BUILD_COMMIT,
//!          llamacpp_sys::build_info::VARIANT, llamacpp_sys::build_info::PATCHES);
//! // SAFETY: llama_max_devices has no preconditions.
//! assert!(unsafe { llamacpp_sys::llama_max_devices() } >= 1);
//! ```

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]

/// What was built: upstream source, variant, applied patches, backends.
pub mod build_info {
    include!(concat!(env!("OUT_DIR"), "/build_info.rs"));
}

// The headers' comments are C prose (bare URLs, `<tags>`), not rustdoc.
#[allow(
    missing_docs,
    rustdoc::all,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;
