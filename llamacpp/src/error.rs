//! The crate's error type and the one place C return codes become `Result`s.

use std::path::PathBuf;

/// Everything a safe call can report instead of crashing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// llama.cpp returned NULL from a constructor; `log` holds what it logged meanwhile.
    #[error("{what} failed{}", if log.is_empty() { String::new() } else { format!(": {log}") })]
    Null {
        /// The operation that failed.
        what: &'static str,
        /// The error/warning lines llama.cpp logged during the call.
        log: String,
    },
    /// Loading a model failed.
    #[error("cannot load model {path}: {reason}")]
    ModelLoad {
        /// The file.
        path: PathBuf,
        /// Why (file missing, cancelled, or llama.cpp's log lines).
        reason: String,
    },
    /// Building a model in memory ([`Model::from_metadata`](crate::Model::from_metadata))
    /// failed: the metadata checks refused it, the fill callback returned an error or left a
    /// tensor unwritten, or llama.cpp refused the model.
    #[error("cannot build the model in memory: {0}")]
    ModelBuild(String),
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary (n_vocab = {n_vocab})")]
    InvalidToken {
        /// The offending id.
        id: i32,
        /// Vocabulary size.
        n_vocab: i32,
    },
    /// A value outside the range an API accepts.
    #[error("{what} = {value} is out of range ({expected})")]
    OutOfRange {
        /// The parameter.
        what: &'static str,
        /// The value given.
        value: i64,
        /// The accepted range, in words.
        expected: String,
    },
    /// The batch cannot take another token.
    #[error("batch is full ({capacity} tokens)")]
    BatchFull {
        /// Its capacity.
        capacity: usize,
    },
    /// The batch is empty.
    #[error("batch is empty")]
    EmptyBatch,
    /// `decode`/`encode`: no KV-cache slot for the batch (llama.cpp code 1); memory is unchanged.
    #[error("no memory slot for the batch (context full?)")]
    NoKvSlot,
    /// `decode`/`encode` was stopped by the abort callback (code 2).
    #[error("decode aborted by the abort callback")]
    Aborted,
    /// llama.cpp rejected the batch (code -1); memory is unchanged.
    #[error("llama.cpp rejected the batch")]
    InvalidBatch,
    /// A fatal compute error (code < -1).
    #[error("compute failed with code {0}")]
    Compute(i32),
    /// The requested output row was not computed by the last decode.
    #[error("no output for batch index {0} (was its `logits` flag set in the last decode?)")]
    NoOutput(i32),
    /// Embeddings were requested from a context created without them.
    #[error("embeddings are not enabled for this context")]
    EmbeddingsDisabled,
    /// A string with an interior NUL byte where C needs a C string.
    #[error("string contains a NUL byte: {0:?}")]
    Nul(String),
    /// Loading or saving state failed.
    #[error("state {0} failed")]
    State(&'static str),
    /// llama.cpp returned no sampler; `log` holds what it logged meanwhile.
    #[error("sampler {sampler} could not be created{}", if log.is_empty() { String::new() } else { format!(": {log}") })]
    SamplerNotCreated {
        /// The sampler (`top_k`, `grammar`, ...).
        sampler: &'static str,
        /// llama.cpp's log during the call.
        log: String,
    },
    /// A sampler parameter outside its domain (checked before llama.cpp sees it).
    #[error("sampler {sampler}: {reason}")]
    SamplerParameter {
        /// The sampler.
        sampler: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A sampler chain was used without a sampler that selects the token at its end
    /// (greedy, dist, mirostat).
    #[error("the sampler chain must end in a selecting sampler (greedy, dist, mirostat)")]
    ChainWithoutSelector,
    /// A sampler chain was used with a context whose model has another vocabulary than the
    /// one it was built for.
    #[error("the sampler chain was built for another vocabulary")]
    ChainVocabulary,
    /// Grammar text that llama.cpp's parser cannot survive or does not accept.
    #[error("grammar: {0}")]
    Grammar(String),
    /// The grammar rejected a token accepted or sampled (llama.cpp's message); the grammar
    /// has no state left until the chain's `reset`.
    #[error("the grammar rejected the token: {0}")]
    GrammarRejected(String),
    /// The grammar rejected an earlier token and has no state left, until the chain's
    /// `reset`.
    #[error(
        "the grammar rejected an earlier token and has no state left; call reset() to start it again"
    )]
    GrammarExhausted,
    /// An end-of-generation token was accepted before the grammar was complete.
    #[error("end-of-generation token {0} before the grammar is complete")]
    GrammarIncomplete(i32),
    /// A [`CustomSampler`](crate::CustomSampler) panicked or broke its contract; a
    /// panicked one stays disabled until [`SamplerChain::reset`](crate::SamplerChain::reset).
    #[error("custom sampler `{name}`: {message}")]
    CustomSampler {
        /// The sampler's name.
        name: String,
        /// What happened (with the panic message).
        message: String,
    },
    /// A Rust callback that llama.cpp called during this call panicked (the panic was
    /// stopped before it could reach C). The call itself ran to its end: for a decode, the
    /// batch was decoded; for a model load, the load was cancelled.
    #[error("the {callback} callback panicked: {message}")]
    CallbackPanicked {
        /// Which callback: `progress` (model load), `set_tensor_data` (the fill callback of
        /// [`Model::from_metadata`](crate::Model::from_metadata)), `graph` (a context's graph
        /// observer or timer) or `mtp capture`.
        callback: &'static str,
        /// The panic's message.
        message: String,
    },
    /// A JSON schema could not be converted to a grammar.
    #[error("JSON schema: {0}")]
    JsonSchema(String),
    /// Applying a chat template failed.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A device name that is unknown or listed twice.
    #[error("device: {0}")]
    Device(String),
    /// A LoRA adapter file could not be loaded: missing, malformed, or for another model.
    #[error("adapter {}: {reason}", path.display())]
    AdapterLoad {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Adapters set on a context of another model than the one they were loaded for.
    #[error("the adapter was loaded for another model")]
    AdapterModel,
    /// An adapter scale that is not finite.
    #[error("adapter scale {0} is not finite")]
    AdapterScale(f32),
    /// The same adapter listed twice in one set.
    #[error("the same adapter is listed twice")]
    AdapterListedTwice,
    /// A control vector llama.cpp cannot apply.
    #[error("control vector: {0}")]
    ControlVector(&'static str),
    /// The model has no tokenizer (vocabulary type none): token texts and attributes do not exist.
    #[error("the model has no tokenizer (vocabulary type none)")]
    NoVocabulary,
    /// A [`SeqCheckpoint`](crate::SeqCheckpoint) that cannot be restored here (taken on
    /// another context or sequence, or the memory no longer holds the positions before it).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A reply that should hold a tool call does not parse as one.
    #[error("tool call: {0}")]
    ToolCall(String),
    /// Speculative decoding was set up with models that cannot work together.
    #[error("speculative decoding: {0}")]
    Speculative(String),
    /// An RPC server could not be used (`rpc` feature): a bad endpoint, a server that cannot
    /// be reached or does not answer, a connection that failed during use, a context
    /// unusable after such a failure, or a server that cannot start.
    #[error("RPC server {endpoint}: {reason}")]
    Rpc {
        /// The endpoint (`host:port`) as given, or the one that failed.
        endpoint: String,
        /// What went wrong, and what to do about it where that is known.
        reason: String,
    },
    /// An RPC server speaks another protocol version than this library (`rpc` feature).
    #[error("RPC server {endpoint} speaks protocol {server}, this client {client}: {reason}")]
    RpcVersion {
        /// The endpoint (`host:port`).
        endpoint: String,
        /// The server's version, `major.minor.patch`.
        server: String,
        /// The version this library speaks and expects.
        client: String,
        /// Why they do not work together.
        reason: String,
    },
    /// A filesystem error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The model or context cannot do this (an encode on a decoder-only model, a position
    /// shift on an M-RoPE model, a partial copy between separate KV streams, a context
    /// over a vocabulary-only model); nothing was changed.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// llama.cpp threw a C++ exception, caught at the C boundary (a malformed tokenizer
    /// in the model file, an allocation that failed, ...). After one from a decode or
    /// encode the context refuses further runs: create a new one.
    #[error("llama.cpp threw in {what}: {message}")]
    Cpp {
        /// The llama.cpp function that threw.
        what: &'static str,
        /// The exception's message.
        message: String,
    },
    /// A state file that is not one this crate wrote for this model: not a state file, a
    /// checksum mismatch (truncated or corrupted), another model's, the other kind
    /// (whole context or one sequence), or more tokens than asked for.
    #[error("state file {0}")]
    StateFile(String),
    /// [`Model::probe`](crate::Model::probe) refused the file: what the child process
    /// that loaded it got, or how it died.
    #[error("probing {}: {failure}", path.display())]
    Probe {
        /// The file.
        path: PathBuf,
        /// What happened in the child.
        failure: crate::ProbeFailure,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a `llama_decode`/`llama_encode` return code.
pub(crate) fn check_decode(rc: i32) -> Result<()> {
    match rc {
        0 => Ok(()),
        1 => Err(Error::NoKvSlot),
        2 => Err(Error::Aborted),
        -1 => Err(Error::InvalidBatch),
        other => Err(Error::Compute(other)),
    }
}

/// A `CString` from user text, as an error instead of a panic.
pub(crate) fn c_string(s: &str) -> Result<std::ffi::CString> {
    std::ffi::CString::new(s).map_err(|_| Error::Nul(s.to_string()))
}

/// A path as llama.cpp's `fopen` takes it: its bytes as they are on Unix (a name that is
/// not UTF-8 still names the same file), UTF-8 elsewhere. A NUL is [`Error::Nul`].
pub(crate) fn path_c_string(path: &std::path::Path) -> Result<std::ffi::CString> {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| Error::Unsupported(format!("a path that is not UTF-8: {}", path.display())))?
        .as_bytes()
        .to_vec();
    std::ffi::CString::new(bytes).map_err(|_| Error::Nul(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_codes_map_to_variants() {
        assert!(check_decode(0).is_ok());
        assert!(matches!(check_decode(1), Err(Error::NoKvSlot)));
        assert!(matches!(check_decode(2), Err(Error::Aborted)));
        assert!(matches!(check_decode(-1), Err(Error::InvalidBatch)));
        assert!(matches!(check_decode(-3), Err(Error::Compute(-3))));
    }
}
