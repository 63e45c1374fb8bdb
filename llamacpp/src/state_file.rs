//! The crate's state files: llama.cpp's state bytes behind a header that names
//! the model they belong to, followed by a checksum of everything before it.
//!
//! llama.cpp's own files (`llama_state_save_file`) carry a magic, a version and
//! the architecture name, nothing else: a state saved from another model of the
//! same architecture and cache shape loads without complaint and computes
//! garbage, and a corrupted byte inside the tensors goes unnoticed. These files
//! are refused before a byte reaches llama.cpp unless their checksum matches
//! and their model fingerprint equals the loading model's.
//!
//! Layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `LLRSSTAT` |
//! | 4 | format version (2) |
//! | 4 | kind: 0 whole context, 1 one sequence |
//! | 32 | model fingerprint (SHA-256 of hyperparameters and vocabulary) |
//! | 8 | token count `n` |
//! | 8 | state length `m` |
//! | 4·n | token ids (i32) |
//! | m | llama.cpp's state bytes (`llama_state_get_data` / `llama_state_seq_get_data`) |
//! | 32 | SHA-256 of everything above |
//!
//! Files are written to a temporary name beside the target, synced, and renamed
//! over it, so a crash while saving leaves the previous file intact.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::Model;
use crate::vocab::Token;

const MAGIC: &[u8; 8] = b"LLRSSTAT";
/// 2: the fingerprint leaves `n_ctx_train` out (a YaRN context rewrites it). A version-1
/// file's fingerprint includes it, so it would be refused as another model's: the version
/// says why instead.
const VERSION: u32 = 2;
const FIXED: usize = 8 + 4 + 4 + 32 + 8 + 8;
const SUM: usize = 32;

/// What a state file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The whole context (`save_state_file`).
    Context = 0,
    /// One sequence (`save_seq_state_file`).
    Sequence = 1,
}

/// A SHA-256 over what makes a state meaningful for a model: its architecture,
/// hyperparameters and metadata (except the free-form `general.*` keys), and
/// every token's text and attributes.
pub(crate) fn fingerprint(model: &Model) -> [u8; 32] {
    *model.fingerprint.get_or_init(|| compute_fingerprint(model))
}

fn compute_fingerprint(model: &Model) -> [u8; 32] {
    let mut h = Sha256::new();
    // Not `n_ctx_train`: a YaRN context rewrites it in the loaded model (the file's
    // `context_length` is in the metadata below), and the hash must not depend on when it
    // was first taken.
    let sizes = [
        i64::from(model.n_embd()),
        i64::from(model.n_layer()),
        i64::from(model.n_head()),
        model.n_params() as i64,
        model.size() as i64,
    ];
    for s in sizes {
        h.update(s.to_le_bytes());
    }
    h.update(model.architecture().unwrap_or_default().as_bytes());
    for (k, v) in model.metadata() {
        if !k.starts_with("general.") || k == "general.architecture" {
            // Length-prefixed, so that no two different lists hash alike.
            for part in [k.as_bytes(), v.as_bytes()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
        }
    }
    let vocab = model.vocab();
    h.update(vocab.n_tokens().to_le_bytes());
    for id in 0..vocab.n_tokens() {
        if let Ok(t) = vocab.token(id) {
            let text = vocab.text(t).unwrap_or_default();
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
            h.update(vocab.attr(t).unwrap_or(0).to_le_bytes());
        }
    }
    h.finalize().into()
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::StateFile(format!("{}: {why}", path.display()))
}

/// Writes a state file atomically; returns its size in bytes.
pub(crate) fn write(
    path: &Path,
    kind: Kind,
    model: &Model,
    tokens: &[i32],
    state: &[u8],
) -> Result<usize> {
    let mut bytes = Vec::with_capacity(FIXED + 4 * tokens.len() + state.len() + SUM);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(kind as u32).to_le_bytes());
    bytes.extend_from_slice(&fingerprint(model));
    bytes.extend_from_slice(&(tokens.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
    for t in tokens {
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    bytes.extend_from_slice(state);
    let sum: [u8; 32] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&sum);

    let tmp = temporary_name(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(bytes.len()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}

/// `.<name>.<pid>.tmp` beside `path` (the same directory, so the rename is atomic).
fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// A state file's tokens and state bytes, checked against `model`.
pub(crate) struct Loaded {
    /// The token ids saved with the state (not yet checked against the vocabulary).
    pub tokens: Vec<i32>,
    /// llama.cpp's state bytes.
    pub state: Vec<u8>,
}

/// Reads and verifies a state file of `kind` for `model`.
///
/// Only regular files are read, and never more bytes than their size says, so
/// a FIFO or a device such as `/dev/zero` is an error rather than an endless read.
pub(crate) fn read(path: &Path, kind: Kind, model: &Model) -> Result<Loaded> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid(path, "not a regular file"));
    }
    let len = usize::try_from(meta.len()).map_err(|_| invalid(path, "too large"))?;
    if len < FIXED + SUM {
        return Err(invalid(
            path,
            format!("{len} bytes is shorter than a state file header"),
        ));
    }
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| invalid(path, format!("cannot allocate {len} bytes to read it")))?;
    std::fs::File::open(path)?
        .take(len as u64)
        .read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(invalid(path, "changed size while being read"));
    }
    if &bytes[..8] != MAGIC {
        return Err(invalid(path, "not a state file written by this crate"));
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32_at(8);
    if version == 1 {
        return Err(invalid(
            path,
            "format version 1, whose model fingerprint this version computes differently: \
             save the state again",
        ));
    }
    if version != VERSION {
        return Err(invalid(
            path,
            format!("format version {version}, expected {VERSION}"),
        ));
    }
    let (body, sum) = bytes.split_at(len - SUM);
    if Sha256::digest(body).as_slice() != sum {
        return Err(invalid(path, "checksum mismatch (truncated or corrupted)"));
    }
    let found = u32_at(12);
    if found != kind as u32 {
        let what = |k: u32| {
            if k == Kind::Context as u32 {
                "a whole context"
            } else {
                "one sequence"
            }
        };
        return Err(invalid(
            path,
            format!(
                "holds the state of {}, not of {}",
                what(found),
                what(kind as u32)
            ),
        ));
    }
    if bytes[16..48] != fingerprint(model) {
        return Err(invalid(
            path,
            "saved from another model (fingerprint differs)",
        ));
    }
    let (n_tokens, n_state) = (u64_at(48), u64_at(56));
    let expected = n_tokens
        .checked_mul(4)
        .and_then(|t| t.checked_add(n_state))
        .and_then(|t| t.checked_add((FIXED + SUM) as u64));
    if expected != Some(len as u64) {
        return Err(invalid(path, "its sizes do not add up to its length"));
    }
    // Both fit: their sum is the file's length, which is a usize.
    let (n_tokens, n_state) = (n_tokens as usize, n_state as usize);
    let tokens_end = FIXED + 4 * n_tokens;
    let tokens = bytes[FIXED..tokens_end]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let state = bytes[tokens_end..tokens_end + n_state].to_vec();
    Ok(Loaded { tokens, state })
}

impl crate::context::Context<'_> {
    /// Saves the memory's state and the tokens that produced it to a file (see
    /// [`state`](Self::state) for what the state holds). The file names the model it
    /// belongs to and carries a checksum; it is written to a temporary name and renamed
    /// into place, so a crash while saving leaves an earlier file intact.
    pub fn save_state_file(&mut self, path: impl AsRef<Path>, tokens: &[Token]) -> Result<()> {
        let state = self.state()?;
        write(
            path.as_ref(),
            Kind::Context,
            self.model(),
            crate::context::bytemuck_tokens(tokens),
            &state,
        )
        .map(|_| ())
    }

    /// Loads a file written by [`save_state_file`](Self::save_state_file) and returns its
    /// tokens (at most `max_tokens`).
    ///
    /// A truncated, corrupted or foreign file (another model, a sequence file, not a state
    /// file) is an `Err` before anything is restored; a state llama.cpp then refuses (a
    /// context of another shape) leaves the memory cleared.
    pub fn load_state_file(
        &mut self,
        path: impl AsRef<Path>,
        max_tokens: usize,
    ) -> Result<Vec<Token>> {
        let path = path.as_ref();
        let loaded = read(path, Kind::Context, self.model())?;
        if loaded.tokens.len() > max_tokens {
            return Err(invalid(
                path,
                format!(
                    "holds {} tokens, more than the {max_tokens} asked for",
                    loaded.tokens.len()
                ),
            ));
        }
        let tokens = self.tokens_of(loaded.tokens)?;
        if let Err(e) = self.set_state(&loaded.state) {
            // llama.cpp may have restored part of it.
            self.clear_memory(true);
            return Err(e);
        }
        Ok(tokens)
    }

    /// Saves the state of sequence `seq` and the tokens that produced it to a file, as
    /// [`save_state_file`](Self::save_state_file) does for the whole memory; returns the
    /// bytes written. Load it with [`load_seq_state_file`](Self::load_seq_state_file)
    /// into any sequence of a context of the same model and shape.
    ///
    /// ```no_run
    /// # use llamacpp::{Batch, Context, ContextParams, Model, ModelParams};
    /// # fn main() -> llamacpp::Result<()> {
    /// # let model = Model::load("model.gguf", ModelParams::default())?;
    /// let mut ctx = Context::new(&model, ContextParams::default().n_seq_max(2))?;
    /// let prompt = model.vocab().tokenize("Hello", true, false)?;
    /// ctx.decode(&mut Batch::from_tokens(&prompt, 0, 0)?)?;
    /// ctx.save_seq_state_file("seq0.bin", 0, &prompt)?;
    /// let tokens = ctx.load_seq_state_file("seq0.bin", 1)?;
    /// assert_eq!(tokens, prompt);
    /// # Ok(()) }
    /// ```
    pub fn save_seq_state_file(
        &mut self,
        path: impl AsRef<Path>,
        seq: i32,
        tokens: &[Token],
    ) -> Result<usize> {
        let state = self.seq_state(seq)?;
        write(
            path.as_ref(),
            Kind::Sequence,
            self.model(),
            crate::context::bytemuck_tokens(tokens),
            &state,
        )
    }

    /// Loads a file written by [`save_seq_state_file`](Self::save_seq_state_file) into
    /// sequence `seq` and returns its tokens. A truncated, corrupted or foreign file is an
    /// `Err` before anything is restored; a state llama.cpp then refuses leaves `seq` cleared.
    pub fn load_seq_state_file(&mut self, path: impl AsRef<Path>, seq: i32) -> Result<Vec<Token>> {
        // Checked first, so that a bad id is reported as such rather than as a bad file.
        self.seq_pos_max(seq)?;
        let loaded = read(path.as_ref(), Kind::Sequence, self.model())?;
        let tokens = self.tokens_of(loaded.tokens)?;
        self.set_seq_state(&loaded.state, seq)?;
        Ok(tokens)
    }

    /// Token ids read from a file, checked against this context's vocabulary.
    fn tokens_of(&self, ids: Vec<i32>) -> Result<Vec<Token>> {
        let vocab = self.model().vocab();
        ids.into_iter().map(|id| vocab.token(id)).collect()
    }
}
