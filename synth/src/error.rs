//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while describing or writing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A name (preset, type, layout) that is not one of the accepted ones.
    #[error("unknown {what} {given:?}; expected one of: {expected}")]
    UnknownName {
        /// What was being named ("preset", "type", ...).
        what: &'static str,
        /// The name given.
        given: String,
        /// The accepted names, comma-separated.
        expected: String,
    },
    /// Options that do not fit together or are out of range.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A string (key, tensor name, path) that C cannot take.
    #[error("{what} {value:?} cannot be passed to C (NUL byte or too long)")]
    BadCString {
        /// What the string is.
        what: &'static str,
        /// The string.
        value: String,
    },
    /// ggml or gguf refused something (allocation failed, write failed, ...).
    #[error("ggml: {0}")]
    Ggml(String),
    /// A quantized block ggml itself considers invalid (NaN or Inf scale).
    #[error("tensor {tensor}: ggml_validate_row_data rejected the {ty} data")]
    InvalidData {
        /// Tensor name.
        tensor: String,
        /// Its type.
        ty: crate::TensorType,
    },
    /// The file layout does not match what gguf reports.
    #[error("{path}: layout mismatch: {detail}")]
    Layout {
        /// File being written.
        path: PathBuf,
        /// What differed.
        detail: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SynthError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with [`SynthError`].
pub type Result<T, E = SynthError> = std::result::Result<T, E>;

/// The shared ggml layer's errors keep their kind where synth has one.
impl From<llamacpp_ggml::Error> for SynthError {
    fn from(e: llamacpp_ggml::Error) -> Self {
        match e {
            llamacpp_ggml::Error::BadCString { what, value } => Self::BadCString { what, value },
            llamacpp_ggml::Error::TensorInfo(m) => Self::InvalidOptions(m),
            other => Self::Ggml(other.to_string()),
        }
    }
}
