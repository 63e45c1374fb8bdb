//! Per-sequence state files: a round trip through a file continues exactly
//! like never saving, on the dense and the hybrid model; bad files are errors.

mod common;

use llamacpp::{Batch, Context, ContextParams, Error, Model};

fn params() -> ContextParams {
    ContextParams::default()
        .n_ctx(256)
        .n_seq_max(2)
        .n_threads(2)
}

fn roundtrip(model: &Model) {
    let vocab = model.vocab();
    let p = vocab
        .tokenize("The quick brown fox jumps over the lazy dog", true, false)
        .unwrap();
    let next = [vocab.token(17).unwrap(), vocab.token(99).unwrap()];
    let n = p.len() as i32;

    // Reference: never saved.
    let mut r = Context::new(model, params()).unwrap();
    r.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    r.decode(&mut Batch::from_tokens(&next, n, 0).unwrap())
        .unwrap();
    let want = r.logits(-1).unwrap().to_vec();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seq.bin");
    let mut a = Context::new(model, params()).unwrap();
    a.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    let written = a.save_seq_state_file(&file, 0, &p).unwrap();
    assert_eq!(written as u64, std::fs::metadata(&file).unwrap().len());

    // Into another sequence of a fresh context.
    let mut b = Context::new(model, params()).unwrap();
    let tokens = b.load_seq_state_file(&file, 1).unwrap();
    assert_eq!(tokens, p);
    assert_eq!(b.seq_pos_max(1).unwrap(), Some(n - 1));
    assert_eq!(b.seq_pos_max(0).unwrap(), None);
    b.decode(&mut Batch::from_tokens(&next, n, 1).unwrap())
        .unwrap();
    let got = b.logits(-1).unwrap();
    let e = llamacpp_ggml::nmse(got, &want);
    assert!(e <= 1e-5, "nmse {e}");

    // Bad inputs: sequence out of range, missing file, truncated file, garbage.
    assert!(matches!(
        b.load_seq_state_file(&file, 2),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        a.save_seq_state_file(&file, -1, &p),
        Err(Error::OutOfRange { .. })
    ));
    assert!(
        b.load_seq_state_file(dir.path().join("none.bin"), 0)
            .is_err()
    );
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.bin");
    // The last case aborts the process through `llama_state_seq_load_file`
    // (GGML_ASSERT after reading past the end); the safe call must not.
    for len in [4, 12, 12 + 4 * p.len(), bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let mut c = Context::new(model, params()).unwrap();
        assert!(
            c.load_seq_state_file(&cut, 0).is_err(),
            "truncated to {len}"
        );
        assert_eq!(c.seq_pos_max(0).unwrap(), None, "half-restored at {len}");
    }
    // A token count larger than the file.
    let mut lying = bytes.clone();
    lying[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&cut, &lying).unwrap();
    assert!(b.load_seq_state_file(&cut, 0).is_err());
    std::fs::write(&cut, b"not a state file at all").unwrap();
    assert!(b.load_seq_state_file(&cut, 0).is_err());
}

#[test]
fn seq_state_file_roundtrip_dense() {
    roundtrip(&common::dense());
}

#[test]
fn seq_state_file_roundtrip_hybrid() {
    roundtrip(&common::qwen3next());
}

#[test]
fn truncated_whole_state_file_is_an_error_and_leaves_no_partial_state() {
    let model = common::dense();
    let vocab = model.vocab();
    let p = vocab
        .tokenize("Hello there, state file", true, false)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.bin");
    let mut a = Context::new(&model, params()).unwrap();
    a.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    a.save_state_file(&file, &p).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let mut b = Context::new(&model, params()).unwrap();
    assert!(b.load_state_file(&cut, 1024).is_err());
    assert_eq!(b.seq_pos_max(0).unwrap(), None);
    assert_eq!(b.load_state_file(&file, 1024).unwrap(), p);
    assert_eq!(b.seq_pos_max(0).unwrap(), Some(p.len() as i32 - 1));
}
