//! Safe Rust API for llama.cpp.
