//! The crate's state files (issue 23, item 5): a checksum and the model's fingerprint
//! in the header, so a truncated, corrupted or foreign file is an `Err` before anything
//! is restored, and the context stays as usable as a fresh one; saves replace a file
//! atomically; files that are not regular files are refused without reading them.

mod common;

use std::path::Path;

use llamacpp::{Batch, Context, ContextParams, Error, Model, ModelParams, Token};
use llamacpp_synth::MetaValue;
use sha2::Digest;

fn params() -> ContextParams {
    ContextParams::default()
        .n_ctx(128)
        .n_seq_max(2)
        .n_threads(1)
}

fn prompt(model: &Model) -> Vec<Token> {
    model
        .vocab()
        .tokenize("A state file that must not be trusted blindly", true, false)
        .unwrap()
}

/// The logits a context gives for `p` decoded from an empty memory.
fn clean_logits(ctx: &mut Context<'_>, p: &[Token]) -> Vec<f32> {
    ctx.clear_memory(true);
    ctx.decode(&mut Batch::from_tokens(p, 0, 0).unwrap())
        .unwrap();
    ctx.logits(-1).unwrap().to_vec()
}

fn flip(src: &Path, dst: &Path, at: usize) {
    let mut bytes = std::fs::read(src).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(dst, bytes).unwrap();
}

fn assert_state_file_error<T: std::fmt::Debug>(r: llamacpp::Result<T>, words: &str, case: &str) {
    match r {
        Err(Error::StateFile(m)) => assert!(m.contains(words), "{case}: {m}"),
        other => panic!("{case}: expected a state file error naming {words:?}, got {other:?}"),
    }
}

#[test]
fn bad_files_are_refused_before_anything_is_restored() {
    let model = common::dense();
    let p = prompt(&model);
    let dir = tempfile::tempdir().unwrap();
    let (whole, seq) = (dir.path().join("whole.bin"), dir.path().join("seq.bin"));
    let mut a = Context::new(&model, params()).unwrap();
    a.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    a.save_state_file(&whole, &p).unwrap();
    a.save_seq_state_file(&seq, 0, &p).unwrap();

    let mut b = Context::new(&model, params()).unwrap();
    let want = clean_logits(&mut b, &p);
    let len = std::fs::metadata(&whole).unwrap().len() as usize;
    let bad = dir.path().join("bad.bin");
    let cases: Vec<(&str, &str)> = vec![
        ("a byte of the state flipped", "checksum"),
        ("a token id flipped", "checksum"),
        ("the checksum flipped", "checksum"),
        ("truncated by one byte", "checksum"),
        ("only the header", "checksum"),
        ("the magic changed", "not a state file"),
    ];
    for (case, words) in cases {
        match case {
            "a byte of the state flipped" => flip(&whole, &bad, len - 100),
            "a token id flipped" => flip(&whole, &bad, 64 + 1),
            "the checksum flipped" => flip(&whole, &bad, len - 1),
            "truncated by one byte" => {
                std::fs::write(&bad, &std::fs::read(&whole).unwrap()[..len - 1]).unwrap()
            }
            "only the header" => {
                std::fs::write(&bad, &std::fs::read(&whole).unwrap()[..120]).unwrap()
            }
            _ => flip(&whole, &bad, 0),
        }
        // Something in memory first, to see that a refused load leaves it alone.
        b.clear_memory(true);
        b.decode(&mut Batch::from_tokens(&p[..3], 0, 0).unwrap())
            .unwrap();
        assert_state_file_error(b.load_state_file(&bad, 1024), words, case);
        assert_eq!(b.seq_pos_max(0).unwrap(), Some(2), "{case}: memory touched");
        assert_eq!(clean_logits(&mut b, &p), want, "{case}: context not usable");
    }
    // The other kind of file, each way round.
    assert_state_file_error(
        b.load_state_file(&seq, 1024),
        "one sequence",
        "sequence file",
    );
    assert_state_file_error(
        b.load_seq_state_file(&whole, 1),
        "whole context",
        "whole file",
    );
    // Another format version, with a valid checksum: version 1's fingerprint differs.
    for (version, words) in [
        (1u32, "format version 1, whose model fingerprint"),
        (3, "format version 3, expected 2"),
    ] {
        let mut bytes = std::fs::read(&whole).unwrap();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let body = bytes.len() - 32;
        let sum = sha2::Sha256::digest(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum);
        std::fs::write(&bad, bytes).unwrap();
        assert_state_file_error(b.load_state_file(&bad, 1024), words, "version");
    }
    // More tokens than the caller accepts.
    assert_state_file_error(b.load_state_file(&whole, 2), "tokens", "token limit");
    assert_eq!(clean_logits(&mut b, &p), want);
    // The good files still load, and continue exactly as the context that saved them.
    assert_eq!(b.load_state_file(&whole, 1024).unwrap(), p);
    assert_eq!(b.seq_pos_max(0).unwrap(), Some(p.len() as i32 - 1));
    assert_eq!(b.load_seq_state_file(&seq, 1).unwrap(), p);
}

#[test]
fn a_state_of_another_model_of_the_same_shape_is_refused() {
    // Same architecture, sizes and cache shape, so llama.cpp's own checks pass; only
    // a hyperparameter differs.
    let dir = tempfile::tempdir().unwrap();
    let mut spec = common::dense_spec();
    spec.metadata
        .set("llama.rope.freq_base", MetaValue::F32(12345.0));
    let other_path = dir.path().join("other.gguf");
    llamacpp_synth::write_gguf(&spec, &other_path, false).unwrap();
    let other = Model::load(&other_path, ModelParams::default()).unwrap();
    let model = common::dense();
    let p = prompt(&model);
    let file = dir.path().join("other-state.bin");
    let mut a = Context::new(&other, params()).unwrap();
    a.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    a.save_state_file(&file, &p).unwrap();
    a.save_seq_state_file(dir.path().join("other-seq.bin"), 0, &p)
        .unwrap();

    let mut b = Context::new(&model, params()).unwrap();
    let want = clean_logits(&mut b, &p);
    assert_state_file_error(b.load_state_file(&file, 1024), "another model", "whole");
    assert_state_file_error(
        b.load_seq_state_file(dir.path().join("other-seq.bin"), 0),
        "another model",
        "sequence",
    );
    assert_eq!(clean_logits(&mut b, &p), want);
}

#[test]
fn saving_replaces_the_file_atomically() {
    let model = common::dense();
    let p = prompt(&model);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.bin");
    let mut a = Context::new(&model, params()).unwrap();
    a.decode(&mut Batch::from_tokens(&p[..4], 0, 0).unwrap())
        .unwrap();
    a.save_state_file(&file, &p[..4]).unwrap();
    a.decode(&mut Batch::from_tokens(&p[4..], 4, 0).unwrap())
        .unwrap();
    a.save_state_file(&file, &p).unwrap();
    // Only the file itself: the temporary it was written to was renamed over it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.bin"]);
    let mut b = Context::new(&model, params()).unwrap();
    assert_eq!(b.load_state_file(&file, 1024).unwrap(), p);
    // A save that cannot be written leaves no temporary behind either.
    assert!(
        a.save_state_file(dir.path().join("missing/state.bin"), &p)
            .is_err()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn endless_empty_and_odd_files_are_errors_without_reading_them() {
    let model = common::dense();
    let mut ctx = Context::new(&model, params()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    assert_state_file_error(ctx.load_state_file(&empty, 8), "shorter", "empty");
    // A directory, and a device that never ends (reading it would never stop).
    assert_state_file_error(ctx.load_state_file(dir.path(), 8), "regular", "directory");
    if Path::new("/dev/zero").exists() {
        assert_state_file_error(ctx.load_state_file("/dev/zero", 8), "regular", "/dev/zero");
        assert_state_file_error(
            ctx.load_seq_state_file("/dev/zero", 0),
            "regular",
            "/dev/zero",
        );
    }
}

/// Found by the `state` fuzz target: llama.cpp allocates the length a state buffer
/// declares for its architecture name before checking it against the buffer, so 8 bytes
/// asked for 4 GiB. Refused before llama.cpp reads them; the context stays usable.
#[test]
fn a_state_buffer_declaring_a_huge_name_is_refused_without_allocating_it() {
    let model = common::dense();
    let p = prompt(&model);
    let mut ctx = Context::new(&model, params()).unwrap();
    let want = clean_logits(&mut ctx, &p);
    for bytes in [
        &[0xff, 0xff, 0xff, 0xff, b'l', b'l'][..],
        &[0x0a, 0, 0, 0, b'l'][..],
        &[1, 0][..],
        &[][..],
    ] {
        match ctx.set_state(bytes) {
            Err(Error::State(m)) => assert!(m.contains("declares"), "{bytes:?}: {m}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    assert_eq!(clean_logits(&mut ctx, &p), want);
}

#[test]
fn a_yarn_context_does_not_change_the_model_identity() {
    // A YaRN context rewrites the loaded model's training context; the fingerprint in
    // state files must not follow, or a file saved before it could not be loaded after.
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.bin");
    let p = prompt(&model);
    let mut a = Context::new(&model, params()).unwrap();
    clean_logits(&mut a, &p);
    a.save_state_file(&file, &p).unwrap();
    let before = model.n_ctx_train();
    let yarn = Context::new(
        &model,
        params()
            .rope_scaling(llamacpp::RopeScaling::Yarn)
            .rope_freq_scale(0.5)
            .yarn_orig_ctx(64),
    )
    .unwrap();
    assert_ne!(
        model.n_ctx_train(),
        before,
        "the YaRN context rewrote nothing"
    );
    drop(yarn);
    let mut b = Context::new(&model, params()).unwrap();
    assert_eq!(b.load_state_file(&file, 1024).unwrap(), p);
}
