//! `llama-bench`.
fn main() {}
