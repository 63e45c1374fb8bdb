//! Models split over several files (`<prefix>-00001-of-0000N.gguf`).
//!
//! When the first file says `split.count > 1`, llama.cpp opens the other files by name and
//! reads each one's `split.no` with `gguf_get_val_u16` without checking its type; gguf's
//! getter `GGML_ASSERT`s the type, so a split whose `split.no` is not a `uint16` aborts.

use std::ffi::CStr;

use llamacpp_sys as sys;

use super::{Meta, abort_reason};

const SPLIT_COUNT: &str = "split.count";
const SPLIT_NO: &str = "split.no";

/// Checks the `split.no` type of every further split of the model whose first file is
/// `path` (with metadata `meta`); returns the metadata of those that could be read.
pub(super) fn check(path: &CStr, meta: &Meta<'_>) -> Result<Vec<Meta<'static>>, String> {
    let mut parts = Vec::new();
    // Another type, or a first file that is not split 0, fails the load cleanly.
    let Some(n) = meta.u16(SPLIT_COUNT).filter(|&n| n > 1) else {
        return Ok(parts);
    };
    if meta.u16(SPLIT_NO) != Some(0) {
        return Ok(parts);
    }
    // llama.cpp's llama_get_list_splits: the first file's name ends in
    // "-00001-of-<n>.gguf" (else the load fails cleanly); the others share its prefix.
    // Bytes, not text: a name that is not UTF-8 is split the same way by llama.cpp.
    let first = path.to_bytes();
    let Some(prefix) = first.strip_suffix(format!("-{:05}-of-{n:05}.gguf", 1).as_bytes()) else {
        return Ok(parts);
    };
    for i in 1..n {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(format!("-{:05}-of-{n:05}.gguf", i + 1).as_bytes());
        let name = String::from_utf8_lossy(&bytes).into_owned();
        let Ok(c_name) = std::ffi::CString::new(bytes) else {
            continue;
        };
        // Missing or unreadable files and a missing key are clean errors in llama.cpp.
        let Some(split) = Meta::open(&c_name) else {
            continue;
        };
        if let Some(t) = split.kv_type(SPLIT_NO)
            && t != sys::GGUF_TYPE_UINT16
        {
            return Err(abort_reason(format!(
                "{SPLIT_NO} of split file {name} has GGUF type {t}, not uint16"
            )));
        }
        parts.push(split);
    }
    Ok(parts)
}
