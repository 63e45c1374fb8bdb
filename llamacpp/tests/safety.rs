//! Every precondition that would abort or corrupt memory in C is an `Err` here.

mod common;

use llamacpp::{Batch, Context, ContextParams, Error, SamplerChain};

#[test]
fn types_are_send_and_sync_where_claimed() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<llamacpp::Model>();
    sync::<llamacpp::Model>();
    send::<Context<'static>>();
    send::<Batch>();
    send::<ContextParams>();
    send::<llamacpp::SeqCheckpoint>();
    sync::<llamacpp::SeqCheckpoint>();
    send::<SamplerChain<'static>>();
    send::<llamacpp::LoraAdapter<'static>>();
    sync::<llamacpp::LoraAdapter<'static>>();
}

#[test]
fn bad_tokens_are_errors_not_aborts() {
    let model = common::dense();
    let vocab = model.vocab();
    let n = vocab.n_tokens();
    assert!(matches!(vocab.token(n), Err(Error::InvalidToken { .. })));
    assert!(matches!(vocab.token(-1), Err(Error::InvalidToken { .. })));
    let t = vocab.token(0).unwrap();
    assert!(vocab.piece(t, false).is_ok());
    // A token checked against a bigger vocabulary is re-checked at every use.
    let big = common::qwen3next();
    let foreign = big.vocab().token(big.vocab().n_tokens() - 1).unwrap();
    if foreign.id() >= n {
        assert!(vocab.piece(foreign, false).is_err());
        assert!(vocab.detokenize(&[foreign], false, false).is_err());
        let mut ctx = Context::new(&model, ContextParams::default().n_ctx(64)).unwrap();
        let mut b = Batch::new(1, 1).unwrap();
        b.add(foreign, 0, &[0], true).unwrap();
        assert!(matches!(
            ctx.decode(&mut b),
            Err(Error::InvalidToken { .. })
        ));
    }
}

#[test]
fn decode_checks_batch_size_and_sequences() {
    let model = common::dense();
    let vocab = model.vocab();
    let t = vocab.token(1).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(128)
            .n_batch(8)
            .n_ubatch(8)
            .n_seq_max(2),
    )
    .unwrap();
    // More tokens than n_batch aborts in C (the llama-cpp-2 bug): here it is an error.
    let mut big = Batch::new(16, 1).unwrap();
    for i in 0..16 {
        big.add(t, i, &[0], false).unwrap();
    }
    assert!(matches!(
        ctx.decode(&mut big),
        Err(Error::OutOfRange {
            what: "batch size",
            ..
        })
    ));
    // Sequence id beyond n_seq_max.
    let mut b = Batch::new(1, 4).unwrap();
    b.add(t, 0, &[3], true).unwrap();
    assert!(matches!(
        ctx.decode(&mut b),
        Err(Error::OutOfRange {
            what: "sequence id",
            ..
        })
    ));
    // Empty batch.
    let mut empty = Batch::new(1, 1).unwrap();
    assert!(matches!(ctx.decode(&mut empty), Err(Error::EmptyBatch)));
    // Outputs only for rows that asked for them.
    let mut ok = Batch::new(2, 1).unwrap();
    ok.add(t, 0, &[0], false).unwrap();
    ok.add(t, 1, &[0], true).unwrap();
    ctx.decode(&mut ok).unwrap();
    assert!(ctx.logits(1).is_ok());
    assert!(matches!(ctx.logits(0), Err(Error::NoOutput(0))));
    assert!(matches!(ctx.logits(5), Err(Error::NoOutput(5))));
    assert!(matches!(ctx.embeddings(1), Err(Error::EmbeddingsDisabled)));
}

#[test]
fn memory_operations_check_their_arguments() {
    let model = common::dense();
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(64).n_seq_max(2)).unwrap();
    assert!(ctx.seq_rm(Some(7), None, None).is_err());
    assert!(ctx.seq_rm(Some(0), Some(5), Some(2)).is_err());
    assert!(ctx.seq_cp(0, 9, None, None).is_err());
    assert!(ctx.seq_div(0, None, None, 0).is_err());
    assert!(ctx.seq_add(0, Some(-3), None, 1).is_err());
    assert_eq!(ctx.seq_pos_max(0).unwrap(), None);
    assert!(ctx.seq_rm(None, None, None).unwrap());
}

#[test]
fn samplers_and_grammars_fail_cleanly() {
    let model = common::dense();
    let vocab = model.vocab();
    assert!(matches!(
        SamplerChain::builder(vocab).top_k(5).build(),
        Err(Error::ChainWithoutSelector)
    ));
    let bad = SamplerChain::builder(vocab)
        .grammar("root ::= ( unclosed", "root")
        .greedy()
        .build();
    assert!(matches!(bad, Err(Error::Grammar(_))), "{bad:?}");
    let bad_regex = SamplerChain::builder(vocab)
        .grammar_lazy("root ::= \"a\"", "root", &["(["], &[])
        .greedy()
        .build();
    assert!(bad_regex.is_err());
    assert!(matches!(
        SamplerChain::builder(vocab)
            .penalties(64, 0.0, 0.0, 0.0)
            .greedy()
            .build(),
        Err(Error::SamplerParameter {
            sampler: "penalties",
            ..
        })
    ));
    assert!(
        SamplerChain::builder(vocab)
            .top_k(40)
            .temp(0.7)
            .dist(1)
            .build()
            .is_ok()
    );
}

#[test]
fn model_load_errors_are_errors() {
    let missing =
        llamacpp::Model::load("/nonexistent/model.gguf", llamacpp::ModelParams::default());
    assert!(matches!(missing, Err(Error::ModelLoad { .. })));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\0\0\0garbage").unwrap();
    assert!(llamacpp::Model::load(&junk, llamacpp::ModelParams::default()).is_err());
    let cancelled = llamacpp::Model::load(
        common::dense_path(),
        llamacpp::ModelParams::default().progress(|_| false),
    );
    assert!(matches!(cancelled, Err(Error::ModelLoad { .. })));
    // A progress callback that panics cancels the load, which reports the panic.
    let panicked = llamacpp::Model::load(
        common::dense_path(),
        llamacpp::ModelParams::default().progress(|p| {
            assert!(p < 0.5, "progress {p} is too far");
            true
        }),
    );
    match panicked {
        Err(Error::CallbackPanicked { callback, message }) => {
            assert_eq!(callback, "progress");
            assert!(
                message.starts_with("progress ") && message.ends_with("is too far"),
                "{message}"
            );
        }
        other => panic!(
            "expected the progress callback's panic, got {:?}",
            other.err()
        ),
    }
    // The next load on this thread is not blamed for it.
    assert!(llamacpp::Model::load(common::dense_path(), llamacpp::ModelParams::default()).is_ok());
}

/// A model without a tokenizer (`no_vocab`, as benchmark models are written) has token ids
/// but no token data; llama.cpp asserts when asked for it, the safe API answers instead.
#[test]
fn token_data_of_a_model_without_tokenizer_is_an_error() {
    let mut opts = llamacpp_synth::SynthOptions::new(llamacpp_synth::Preset::LlamaTiny);
    opts.vocab = llamacpp_synth::Vocab::None { size: 512 };
    let path = llamacpp_synth::cached_model(&opts).unwrap();
    let model = llamacpp::Model::load(path, Default::default()).unwrap();
    let vocab = model.vocab();
    assert!(!vocab.has_tokenizer());
    assert!(common::dense().vocab().has_tokenizer());
    let t = vocab.token(7).unwrap();
    assert!(matches!(vocab.text(t), Err(Error::NoVocabulary)));
    assert!(matches!(vocab.attr(t), Err(Error::NoVocabulary)));
    assert!(!vocab.is_control(t));
}

/// Many BPE pre-tokenizers fall back to `std::regex`, which recursed once per character of
/// a match: a run of 8000 letters (or spaces, digits, punctuation) overflowed a 2 MiB
/// thread's stack. Long texts now tokenize on a thread whose stack follows their length.
#[test]
fn long_runs_tokenize_with_regex_pre_tokenizers() {
    use llamacpp::{KvOverride, Model, ModelParams};
    for pre in [
        "deepseek-llm",
        "falcon",
        "gpt-4o",
        "bloom",
        "tekken",
        "llama3",
    ] {
        let model = Model::load(
            common::dense_path(),
            ModelParams::default()
                .kv_override("tokenizer.ggml.pre", KvOverride::Str(pre.into()))
                .unwrap(),
        )
        .unwrap();
        let vocab = model.vocab();
        for run in ["a", " ", "1", "!", "\n", "漢"] {
            let text = run.repeat(60_000);
            let tokens = vocab.tokenize(&text, false, false).unwrap();
            assert!(!tokens.is_empty(), "{pre} {run:?}");
            // What comes back detokenizes to the text (the vocabulary has every byte).
            let mut bytes = Vec::new();
            for t in &tokens {
                bytes.extend(vocab.piece_bytes(*t, false).unwrap());
            }
            assert_eq!(bytes, text.as_bytes(), "{pre} {run:?}");
        }
        // Ordinary text gives the same tokens on either side of the helper-thread threshold
        // (all but the last two, where the short text ends).
        let line = "The quick brown fox jumps over the lazy dog. ";
        let short = vocab.tokenize(&line.repeat(20), false, false).unwrap();
        let long = vocab.tokenize(&line.repeat(200), false, false).unwrap();
        let n = short.len() - 2;
        assert_eq!(&long[..n], &short[..n], "{pre}");
    }
}
