//! The one error type of this crate.

use crate::types::TensorType;

/// Why ggml was not called, or what it refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Rows that do not split into whole blocks: ggml aborts the process on them.
    #[error("{ty}: rows of {row_len} values are not whole blocks of {block}")]
    RowLength {
        /// The storage type.
        ty: TensorType,
        /// The row length given.
        row_len: usize,
        /// The type's block size.
        block: u64,
    },
    /// Data that is not whole rows.
    #[error("{len} values are not whole rows of {row_len}")]
    PartialRow {
        /// The number of values given.
        len: usize,
        /// The row length given.
        row_len: usize,
    },
    /// A type ggml only quantizes with an importance matrix.
    #[error("{0} needs an importance matrix")]
    NeedsImportanceMatrix(TensorType),
    /// Encoded data of the wrong size.
    #[error("{ty}: {written} bytes where {expected} were expected")]
    Size {
        /// The storage type.
        ty: TensorType,
        /// The bytes written or given.
        written: usize,
        /// The bytes the values take in this type.
        expected: usize,
    },
    /// Data `ggml_validate_row_data` refused (a NaN or Inf value or scale).
    #[error("ggml_validate_row_data rejected the {0} data")]
    InvalidData(TensorType),
    /// ggml could not allocate or write a GGUF context.
    #[error("gguf: {0}")]
    Gguf(String),
    /// ggml's parser refused a GGUF file.
    #[error("{path}: not a readable GGUF file{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    GgufRead {
        /// The file.
        path: String,
        /// The exception ggml's parser threw, or empty (its log says why).
        reason: String,
    },
    /// A string that cannot be passed to C: a NUL byte (or an empty path).
    #[error("{what} {value:?} cannot be passed to C (NUL byte or empty)")]
    BadCString {
        /// What the string was.
        what: &'static str,
        /// The string.
        value: String,
    },
    /// A tensor info ggml would abort on.
    #[error("{0}")]
    TensorInfo(String),
    /// A type ggml has no converter to f32 for.
    #[error("ggml has no converter from {0} to f32")]
    NoConverter(TensorType),
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
