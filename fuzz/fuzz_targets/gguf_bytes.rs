//! Arbitrary bytes as a GGUF file's header (metadata and tensor infos), loaded
//! vocab-only and then fully, and used.
//!
//! The bytes are followed by 8 MiB of zeros (a sparse tail), so that a header
//! whose tensors fit is loaded with zero weights instead of being refused for
//! data outside the file; the seeds are the headers of every synthetic
//! architecture and of their semantic corruptions (`cargo run --bin seed`).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use llamacpp::{Model, ModelParams};

const TAIL: u64 = 8 << 20;

fuzz_target!(|data: &[u8]| {
    llamacpp_fuzz::quiet();
    let path = llamacpp_fuzz::scratch("bytes.gguf");
    let written = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(data)?;
        f.set_len(data.len() as u64 + TAIL)
    });
    if written.is_ok() {
        for vocab_only in [true, false] {
            let params = ModelParams::default().vocab_only(vocab_only);
            if let Ok(model) = Model::load(&path, params) {
                llamacpp_fuzz::exercise(&model, vocab_only);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
