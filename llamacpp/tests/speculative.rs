//! Speculative decoding gives exactly the target's greedy output, on dense and hybrid models.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use llamacpp::generate::{Generator, StopAt};
use llamacpp::speculative::SpeculativeDecoder;
use llamacpp::{Context, ContextParams, Error, Model, ModelParams, SamplerChain, Token};
use llamacpp_synth::{Preset, SynthOptions, Vocab as SynthVocab};

const PROMPTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog",
    "<|im_start|>user\nWrite a poem about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "1 2 3 4 5 6",
];
const MAX_TOKENS: usize = 40;

fn params() -> ContextParams {
    ContextParams::default().n_ctx(512).n_batch(64).n_threads(1)
}

fn tokens(model: &Model, text: &str) -> Vec<Token> {
    model.vocab().tokenize(text, true, true).unwrap()
}

/// What plain greedy decoding of `model` generates: the reference.
fn greedy(model: &Model, prompt: &[Token], max_tokens: usize) -> Vec<Token> {
    let mut ctx = Context::new(model, params()).unwrap();
    let mut sampler = SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .unwrap();
    let stop = StopAt {
        max_tokens,
        stop_strings: vec![],
    };
    let mut g = Generator::new(&mut ctx, &mut sampler, prompt, 0, stop).unwrap();
    while let Some(p) = g.next_piece() {
        p.unwrap();
    }
    // Generator may hand out one token past `max_tokens`; the reference stops at it.
    g.tokens().iter().copied().take(max_tokens).collect()
}

/// Speculative output equals greedy output for every prompt and n_draft; returns the
/// (drafted, accepted) totals.
fn check_pair(target: &Model, draft: &Model) -> (usize, usize) {
    let mut tctx = Context::new(target, params()).unwrap();
    let mut dctx = Context::new(draft, params()).unwrap();
    let (mut drafted, mut accepted) = (0, 0);
    for text in PROMPTS {
        let prompt = tokens(target, text);
        let want = greedy(target, &prompt, MAX_TOKENS);
        assert!(!want.is_empty(), "reference produced nothing for {text:?}");
        for n_draft in [1, 4, 8] {
            let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, n_draft).unwrap();
            let got = spec.generate(&prompt, MAX_TOKENS).unwrap();
            assert_eq!(got, want, "prompt {text:?}, n_draft {n_draft}");
            let s = spec.stats();
            assert_eq!(s.generated, want.len());
            assert!(s.accepted <= s.drafted);
            assert!(s.steps <= want.len(), "{s:?}");
            // Every output token but the first came from a verification round (which also
            // fixed the end-of-generation token, and a guess after it, if generation ended so).
            let fixed = s.accepted + s.steps + 1;
            if want.len() == MAX_TOKENS {
                assert_eq!(fixed, want.len(), "{s:?}");
            } else {
                assert!((want.len() + 1..=want.len() + 2).contains(&fixed), "{s:?}");
            }
            drafted += s.drafted;
            accepted += s.accepted;
        }
    }
    (drafted, accepted)
}

#[test]
fn hybrid_target_dense_draft_matches_greedy() {
    let (t, d) = (common::qwen3next(), common::dense());
    let (drafted, _) = check_pair(&t, &d);
    assert!(drafted > 0);
}

#[test]
fn dense_target_hybrid_draft_matches_greedy() {
    let (t, d) = (common::dense(), common::qwen3next());
    check_pair(&t, &d);
}

#[test]
fn hybrid_self_draft_accepts_everything() {
    let (t, d) = (common::qwen3next(), common::qwen3next());
    let (drafted, accepted) = check_pair(&t, &d);
    assert!(drafted > 0);
    assert_eq!(
        accepted, drafted,
        "a model drafting for itself must always be right"
    );
}

#[test]
fn dense_self_draft_accepts_everything() {
    let (t, d) = (common::dense(), common::dense());
    let (drafted, accepted) = check_pair(&t, &d);
    assert_eq!(accepted, drafted);
}

/// The same hybrid model in Q4_0: its guesses are often but not always right, so rounds end
/// in partial acceptances, where both recurrent memories are restored from checkpoints.
#[test]
fn hybrid_quantized_self_draft_partially_accepts() {
    let t = common::qwen3next();
    let mut opts = SynthOptions::new(Preset::Qwen3NextTiny);
    opts.ftype = llamacpp_synth::FileType::Q4_0;
    let d = Model::load(
        llamacpp_synth::cached_model(&opts).unwrap(),
        ModelParams::default(),
    )
    .unwrap();
    let (drafted, accepted) = check_pair(&t, &d);
    eprintln!("Q4_0 draft for Q8_0 target: {accepted}/{drafted} accepted");
    assert!(accepted > 0 && accepted < drafted, "{accepted}/{drafted}");
}

#[test]
fn self_draft_needs_fewer_target_decodes() {
    let (t, d) = (common::qwen3next(), common::qwen3next());
    let mut tctx = Context::new(&t, params()).unwrap();
    let mut dctx = Context::new(&d, params()).unwrap();
    let prompt = tokens(&t, PROMPTS[0]);
    let want = greedy(&t, &prompt, MAX_TOKENS);
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 8).unwrap();
    assert_eq!(spec.generate(&prompt, MAX_TOKENS).unwrap(), want);
    let s = spec.stats();
    // One prompt decode, then one batch per 9 tokens instead of one decode per token.
    assert!(s.target_decodes <= 1 + want.len().div_ceil(9), "{s:?}");
    assert_eq!(s.acceptance_rate(), 1.0);
}

#[test]
fn step_streams_the_same_tokens() {
    let (t, d) = (common::qwen3next(), common::dense());
    let prompt = tokens(&t, PROMPTS[1]);
    let want = greedy(&t, &prompt, MAX_TOKENS);
    let mut tctx = Context::new(&t, params()).unwrap();
    let mut dctx = Context::new(&d, params()).unwrap();
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 4).unwrap();
    spec.start(&prompt, MAX_TOKENS).unwrap();
    let mut got = Vec::new();
    loop {
        let new = spec.step().unwrap();
        if new.is_empty() {
            break;
        }
        got.extend(new);
    }
    assert!(spec.is_done());
    assert_eq!(got, want);
    assert_eq!(spec.output(), &want[..]);
}

#[test]
fn max_tokens_is_honoured() {
    let (t, d) = (common::dense(), common::dense());
    let prompt = tokens(&t, PROMPTS[0]);
    let want = greedy(&t, &prompt, 5);
    let mut tctx = Context::new(&t, params()).unwrap();
    let mut dctx = Context::new(&d, params()).unwrap();
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 8).unwrap();
    assert_eq!(spec.generate(&prompt, 5).unwrap(), want);
    assert!(want.len() <= 5);
    assert!(spec.generate(&prompt, 0).unwrap().is_empty());
}

fn model_with_vocab(vocab: SynthVocab) -> Model {
    let mut opts = SynthOptions::new(Preset::LlamaTiny);
    opts.vocab = vocab;
    let path = llamacpp_synth::cached_model(&opts).unwrap();
    Model::load(path, ModelParams::default()).unwrap()
}

#[test]
fn other_vocabularies_are_refused() {
    let t = common::dense();
    let mut tctx = Context::new(&t, params()).unwrap();
    // Another size.
    let small = model_with_vocab(SynthVocab::None { size: 512 });
    let mut dctx = Context::new(&small, params()).unwrap();
    let e = SpeculativeDecoder::new(&mut tctx, &mut dctx, 4).unwrap_err();
    assert!(
        matches!(&e, Error::Speculative(m) if m.contains("sizes differ")),
        "{e}"
    );
    // The same size, but no tokenizer (bare ids whose meaning cannot be compared).
    let same_size = model_with_vocab(SynthVocab::None {
        size: t.vocab().n_tokens() as u32,
    });
    assert_eq!(same_size.vocab().n_tokens(), t.vocab().n_tokens());
    let mut dctx = Context::new(&same_size, params()).unwrap();
    let e = SpeculativeDecoder::new(&mut tctx, &mut dctx, 4).unwrap_err();
    assert!(
        matches!(&e, Error::Speculative(m) if m.contains("types differ")),
        "{e}"
    );
}

#[test]
fn bad_arguments_are_errors() {
    let (t, d) = (common::dense(), common::qwen3next());
    let mut tctx = Context::new(&t, params()).unwrap();
    let mut dctx = Context::new(&d, params()).unwrap();
    // n_batch is 64: the pending token plus 64 guesses do not fit one batch.
    assert!(matches!(
        SpeculativeDecoder::new(&mut tctx, &mut dctx, 64),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        SpeculativeDecoder::new(&mut tctx, &mut dctx, 0),
        Err(Error::OutOfRange { .. })
    ));
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 63).unwrap();
    assert!(matches!(spec.generate(&[], 4), Err(Error::EmptyBatch)));
}

#[test]
fn decode_errors_surface() {
    let (t, d) = (common::qwen3next(), common::dense());
    let abort = Arc::new(AtomicBool::new(false));
    let mut tctx = Context::new(&t, params().abort_flag(abort.clone())).unwrap();
    let mut dctx = Context::new(&d, params()).unwrap();
    let prompt = tokens(&t, PROMPTS[0]);
    let mut spec = SpeculativeDecoder::new(&mut tctx, &mut dctx, 4).unwrap();
    spec.start(&prompt, MAX_TOKENS).unwrap();
    assert_eq!(
        spec.step().unwrap().len(),
        1,
        "the first token comes from the prompt"
    );
    abort.store(true, Ordering::SeqCst);
    assert!(matches!(spec.step(), Err(Error::Aborted)));
    assert!(spec.is_done());
    assert!(spec.step().unwrap().is_empty());
    // A fresh run works again once the flag is down.
    abort.store(false, Ordering::SeqCst);
    let want = greedy(&t, &prompt, MAX_TOKENS);
    assert_eq!(spec.generate(&prompt, MAX_TOKENS).unwrap(), want);
    // The target's context is too small for the prompt.
    let long: Vec<Token> = prompt.iter().copied().cycle().take(300).collect();
    let mut small = Context::new(
        &t,
        ContextParams::default().n_ctx(256).n_batch(64).n_threads(1),
    )
    .unwrap();
    let mut spec = SpeculativeDecoder::new(&mut small, &mut dctx, 4).unwrap();
    let r = spec.generate(&long, 4);
    assert!(r.is_err(), "{r:?}");
}
