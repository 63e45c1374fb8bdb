//! MTP (NextN) self-speculative decoding on a synthetic Qwen3-Next with one MTP block.

mod common;

use std::path::PathBuf;

use llamacpp::mtp::{MtpDrafter, MtpModel, MtpOutput, MtpSpeculative, MtpStats};
use llamacpp::{Context, ContextParams, Error, Model, ModelParams, Pooling, Token};
use llamacpp_synth::{Preset, SynthOptions};

fn mtp_path() -> PathBuf {
    llamacpp::backend::set_logging(false);
    let opts = SynthOptions {
        mtp: true,
        ..SynthOptions::new(Preset::Qwen3NextTiny)
    };
    llamacpp_synth::cached_model(&opts).expect("write qwen3next-tiny with an MTP block")
}

/// One compute thread: the tests run in parallel on a 2-core machine, and ggml's threads
/// spin at every graph barrier, so two tests with 2 threads each slow down a hundredfold.
fn params() -> ContextParams {
    ContextParams::default().n_ctx(256).n_batch(64).n_threads(1)
}

fn argmax(v: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as i32
}

/// Plain greedy decoding, one token per decode, stopping after an end-of-generation token.
fn greedy(model: &Model, prompt: &[Token], n: usize) -> Vec<Token> {
    let mut ctx = Context::new(model, params()).unwrap();
    ctx.decode_tokens(prompt).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let t = model
            .vocab()
            .token(argmax(ctx.logits(-1).unwrap()))
            .unwrap();
        out.push(t);
        if model.vocab().is_eog(t) {
            break;
        }
        ctx.decode_tokens(&[t]).unwrap();
    }
    out
}

const PROMPTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog",
    "Hello, world! 1 2 3",
    "<|im_start|>user\nWrite a poem about the sea<|im_end|>\n<|im_start|>assistant\n",
];

#[test]
fn loads_with_and_without_the_mtp_block() {
    let path = mtp_path();
    // load_mtp off: the block is skipped and the trunk works as usual.
    let plain = Model::load(&path, ModelParams::default()).unwrap();
    let mtp = MtpModel::load(&path, ModelParams::default()).unwrap();
    assert_eq!(mtp.n_layer_nextn(), 1);
    assert_eq!(mtp.n_layer(), plain.n_layer());
    let prompt = plain.vocab().tokenize(PROMPTS[0], true, false).unwrap();
    assert_eq!(greedy(&plain, &prompt, 8), greedy(&mtp, &prompt, 8));
}

#[test]
fn models_without_mtp_layers_are_refused() {
    for path in [common::qwen3next_path(), common::dense_path()] {
        match MtpModel::load(&path, ModelParams::default()) {
            Err(Error::Speculative(msg)) => eprintln!("refused {}: {msg}", path.display()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn mtp_drafting_matches_plain_greedy() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let n_tokens = 16;
    let mut total = llamacpp::mtp::MtpStats::default();
    for (i, text) in PROMPTS.into_iter().enumerate() {
        let prompt = model.vocab().tokenize(text, true, true).unwrap();
        let reference = greedy(&model, &prompt, n_tokens);
        for n_draft in [1 + i, 4] {
            let mut spec = MtpSpeculative::new(&model, params(), n_draft).unwrap();
            let out = spec.generate(&prompt, n_tokens).unwrap();
            assert_eq!(out.tokens, reference, "prompt {text:?}, n_draft {n_draft}");
            let s = out.stats;
            eprintln!(
                "n_draft {n_draft}: {} rounds, {} drafted, {} accepted ({:.2}) for {text:?}",
                s.rounds,
                s.drafted,
                s.accepted,
                s.acceptance_rate()
            );
            assert!(s.drafted > 0 && s.accepted <= s.drafted);
            // Every round emits its accepted drafts and one target token.
            assert_eq!(s.accepted + s.rounds + 1, out.tokens.len());
            total.drafted += s.drafted;
            total.accepted += s.accepted;
            if n_draft == 4 {
                // A second run on the same contexts starts from scratch.
                assert_eq!(spec.generate(&prompt, n_tokens).unwrap(), out);
            }
        }
    }
    eprintln!(
        "MTP acceptance over all runs: {}/{} = {:.3} (random weights: low is expected)",
        total.accepted,
        total.drafted,
        total.acceptance_rate()
    );
}

#[test]
fn bad_arguments_are_errors() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    assert!(MtpSpeculative::new(&model, params(), 0).is_err());
    // A verify batch of n_draft + 1 tokens must fit n_batch.
    assert!(MtpSpeculative::new(&model, params().n_batch(4).n_ubatch(4), 4).is_err());
    let mut spec = MtpSpeculative::new(&model, params(), 2).unwrap();
    assert!(matches!(spec.generate(&[], 4), Err(Error::EmptyBatch)));
    let prompt = model.vocab().tokenize(PROMPTS[0], true, false).unwrap();
    assert!(matches!(
        spec.generate(&prompt, 1000),
        Err(Error::OutOfRange { .. })
    ));
    assert!(spec.generate(&prompt, 0).unwrap().tokens.is_empty());
}

// The MTP head on random weights never drafts the target's token, so the paths where drafts
// are accepted are driven through `generate_with_drafts`: the head still drafts every round
// (its cache is updated as usual), but the target verifies drafts taken from the known greedy
// continuation, whole or corrupted at chosen offsets.

/// What the loop must count when it verifies `drafts_for(generated, round, k)` each round,
/// derived from the greedy continuation `reference` alone: a draft is accepted while it equals
/// the target's own next token (and is not an end-of-generation token, which the target emits
/// itself); each round emits the accepted drafts and the target's token.
fn expected_stats(
    model: &Model,
    reference: &[Token],
    max_tokens: usize,
    n_draft: usize,
    mut drafts_for: impl FnMut(usize, usize, usize) -> Vec<Token>,
) -> MtpStats {
    let vocab = model.vocab();
    let mut stats = MtpStats::default();
    let mut done = 1;
    if vocab.is_eog(reference[0]) {
        return stats;
    }
    while done < max_tokens {
        let k = n_draft.min(max_tokens - done);
        let drafts = drafts_for(done, stats.rounds, k);
        stats.rounds += 1;
        stats.drafted += drafts.len();
        let m = drafts
            .iter()
            .zip(&reference[done..])
            .take_while(|(d, t)| d == t && !vocab.is_eog(**d))
            .count();
        stats.accepted += m;
        for _ in 0..=m {
            let t = reference[done];
            done += 1;
            if vocab.is_eog(t) || done >= max_tokens {
                return stats;
            }
        }
    }
    stats
}

/// The true continuation at output index `done`, `k` tokens, with the draft at offset
/// `round % (n_draft + 1)` replaced by another token: rounds cycle through rejecting the
/// first draft, each later one, and none.
fn corrupted(
    model: &Model,
    reference: &[Token],
    done: usize,
    round: usize,
    k: usize,
    n_draft: usize,
) -> Vec<Token> {
    let mut d: Vec<Token> = reference[done..].iter().take(k).copied().collect();
    let c = round % (n_draft + 1);
    if let Some(t) = d.get_mut(c) {
        let n_vocab = model.vocab().n_tokens();
        *t = model.vocab().token((t.id() + 1) % n_vocab).unwrap();
    }
    d
}

/// Both contexts hold the same positions after a generation: the MTP cache has an entry for
/// every position the target decoded, and no stale draft entries past them.
fn assert_in_sync(spec: &mut MtpSpeculative<'_>) {
    let target_end = spec.target().seq_pos_max(0).unwrap().map_or(0, |p| p + 1);
    assert_eq!(spec.drafter().n_past(), target_end);
}

/// One round as the loop saw it: the position of its first verified token and the MTP
/// head's own drafts.
type Round = (usize, Vec<Token>);

/// Runs `generate_with_drafts` with `drafts_for(done, round, k)` and records every round.
fn run_with(
    spec: &mut MtpSpeculative<'_>,
    prompt: &[Token],
    max_tokens: usize,
    mut drafts_for: impl FnMut(usize, usize, usize) -> Vec<Token>,
) -> (MtpOutput, Vec<Round>) {
    let mut rounds = Vec::new();
    let out = spec
        .generate_with_drafts(prompt, max_tokens, |generated, own| {
            rounds.push((prompt.len() + generated.len() - 1, own.to_vec()));
            drafts_for(generated.len(), rounds.len() - 1, own.len())
        })
        .unwrap();
    (out, rounds)
}

#[test]
fn true_continuation_drafts_are_all_accepted() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let n_tokens = 16;
    for text in PROMPTS {
        let prompt = model.vocab().tokenize(text, true, true).unwrap();
        let reference = greedy(&model, &prompt, n_tokens);
        assert!(
            !reference.iter().any(|&t| model.vocab().is_eog(t)),
            "the counts below assume no end-of-generation token in {reference:?}"
        );
        for n_draft in 1..=4 {
            let mut spec = MtpSpeculative::new(&model, params(), n_draft).unwrap();
            let truth = |done: usize, _: usize, k: usize| reference[done..][..k].to_vec();
            let (out, _) = run_with(&mut spec, &prompt, n_tokens, truth);
            assert_eq!(out.tokens, reference, "prompt {text:?}, n_draft {n_draft}");
            let s = out.stats;
            eprintln!("n_draft {n_draft}, all true: {s:?} for {text:?}");
            // 15 tokens after the one the prompt yields, n_draft + 1 per round; the last
            // round drafts only what is still wanted (n_draft 1: 1 + 7 * 2 + 1 draft; 3:
            // 1 + 3 * 4 + 3 drafts, whose target token is past max_tokens).
            let (rounds, drafted) = [(8, 8), (5, 10), (4, 12), (3, 12)][n_draft - 1];
            assert_eq!(
                (s.rounds, s.drafted, s.accepted),
                (rounds, drafted, drafted)
            );
            assert_eq!(
                s,
                expected_stats(&model, &reference, n_tokens, n_draft, truth)
            );
            assert_in_sync(&mut spec);
        }
    }
}

#[test]
fn corrupted_drafts_are_accepted_up_to_the_first_wrong_one() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let n_tokens = 24;
    let mut total = MtpStats::default();
    for (i, text) in PROMPTS.into_iter().enumerate() {
        let prompt = model.vocab().tokenize(text, true, true).unwrap();
        let reference = greedy(&model, &prompt, n_tokens);
        for n_draft in 1..=4 {
            let mut spec = MtpSpeculative::new(&model, params(), n_draft).unwrap();
            // Shift the cycle per prompt so each offset meets different rounds.
            let bad = |done: usize, round: usize, k: usize| {
                corrupted(&model, &reference, done, round + i, k, n_draft)
            };
            let (out, _) = run_with(&mut spec, &prompt, n_tokens, bad);
            assert_eq!(out.tokens, reference, "prompt {text:?}, n_draft {n_draft}");
            let s = out.stats;
            eprintln!("n_draft {n_draft}, corrupted: {s:?} for {text:?}");
            assert_eq!(
                s,
                expected_stats(&model, &reference, n_tokens, n_draft, bad)
            );
            assert!(0 < s.accepted && s.accepted < s.drafted);
            assert_in_sync(&mut spec);
            total.drafted += s.drafted;
            total.accepted += s.accepted;
        }
    }
    eprintln!(
        "corrupted drafts: {}/{} accepted",
        total.accepted, total.drafted
    );
}

#[test]
fn the_second_of_four_drafts_wrong_accepts_one_per_round() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let prompt = model.vocab().tokenize(PROMPTS[0], true, true).unwrap();
    let n_tokens = 16;
    let reference = greedy(&model, &prompt, n_tokens);
    let mut spec = MtpSpeculative::new(&model, params(), 4).unwrap();
    // Offset 1 in every round (round 1 of a 4 + 1 cycle).
    let second_wrong =
        |done: usize, _: usize, k: usize| corrupted(&model, &reference, done, 1, k, 4);
    let (out, rounds) = run_with(&mut spec, &prompt, n_tokens, second_wrong);
    assert_eq!(out.tokens, reference);
    // Each round accepts the first draft and emits the target's token for the second: two
    // tokens a round after the first, so 15 tokens take 8 rounds. The 7th starts with 3
    // tokens still wanted and drafts 3; the 8th drafts the single token still wanted (too
    // short to be corrupted, so accepted).
    assert_eq!(rounds.len(), 8);
    assert!(rounds.iter().all(|(_, own)| own.len() <= 4));
    assert_eq!(
        out.stats,
        MtpStats {
            rounds: 8,
            drafted: 6 * 4 + 3 + 1,
            accepted: 8
        }
    );
    assert_in_sync(&mut spec);
}

/// The MTP head's drafts for each of `rounds`, recomputed from scratch: one plain target pass
/// over `seq` (prompt and greedy continuation; each hidden state depends only on the tokens up
/// to it) gives every state, then for each round a fresh MTP cache gets the entries (token at
/// `p`, state at `p - lag`) for every position before the round's, and the head drafts from
/// there. `lag` 1 is the protocol; 0 is the classic off-by-one, a control that the
/// comparison notices a wrongly built cache.
fn replay_drafts(model: &MtpModel, seq: &[Token], rounds: &[Round], lag: usize) -> Vec<Round> {
    let p = || {
        params()
            .n_batch(256)
            .embeddings(true)
            .pooling(Pooling::None)
    };
    let mut target = Context::new(model.model(), p()).unwrap();
    target.decode_tokens(seq).unwrap();
    let n_embd = model.n_embd() as usize;
    let states: Vec<f32> = (0..seq.len())
        .flat_map(|i| target.embeddings(i as i32).unwrap().to_vec())
        .collect();
    // The state paired with the token at `p`: zeros before the first.
    let state_for = |p: usize| -> Vec<f32> {
        match p.checked_sub(lag) {
            Some(q) => states[q * n_embd..][..n_embd].to_vec(),
            None => vec![0.0; n_embd],
        }
    };
    let mut drafter = MtpDrafter::new(model, &target, &p()).unwrap();
    rounds
        .iter()
        .map(|(pos, own)| {
            drafter.clear();
            let entries: Vec<f32> = (0..*pos).flat_map(state_for).collect();
            drafter.feed(0, &seq[..*pos], &entries).unwrap();
            let mut drafts = Vec::new();
            let (mut tok, mut h) = (seq[*pos], state_for(*pos));
            for i in 0..own.len() {
                let chain = i + 1 < own.len();
                let (d, h_next) = drafter.step(tok, (pos + i) as i32, &h, chain).unwrap();
                drafts.push(d);
                tok = d;
                h = h_next.unwrap_or_default();
            }
            (*pos, drafts)
        })
        .collect()
}

#[test]
fn the_mtp_cache_matches_a_replay_after_accepted_and_rejected_drafts() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let n_tokens = 24;
    for (i, text) in PROMPTS.into_iter().enumerate() {
        let prompt = model.vocab().tokenize(text, true, true).unwrap();
        let reference = greedy(&model, &prompt, n_tokens);
        let seq: Vec<Token> = prompt.iter().chain(&reference).copied().collect();
        for n_draft in [2, 4] {
            let mut spec = MtpSpeculative::new(&model, params(), n_draft).unwrap();
            // Rounds that accept all, some and none of their drafts: every later round drafts
            // from a cache that the earlier ones truncated and re-fed.
            let bad = |done: usize, round: usize, k: usize| {
                corrupted(&model, &reference, done, round + i, k, n_draft)
            };
            let (out, rounds) = run_with(&mut spec, &prompt, n_tokens, bad);
            assert_eq!(out.tokens, reference);
            let s = out.stats;
            assert!(0 < s.accepted && s.accepted < s.drafted, "{s:?}");
            assert_eq!(
                rounds,
                replay_drafts(&model, &seq, &rounds, 1),
                "prompt {text:?}, n_draft {n_draft}"
            );
            assert_ne!(rounds, replay_drafts(&model, &seq, &rounds, 0));
        }
    }
}

#[test]
fn override_edge_cases() {
    let model = MtpModel::load(mtp_path(), ModelParams::default()).unwrap();
    let prompt = model.vocab().tokenize(PROMPTS[1], true, true).unwrap();
    let n_tokens = 12;
    let reference = greedy(&model, &prompt, n_tokens);
    let mut spec = MtpSpeculative::new(&model, params(), 3).unwrap();
    // No drafts at all: every round verifies only its first token, one token a round.
    let (out, rounds) = run_with(&mut spec, &prompt, n_tokens, |_, _, _| Vec::new());
    assert_eq!(out.tokens, reference);
    let expected = MtpStats {
        rounds: n_tokens - 1,
        drafted: 0,
        accepted: 0,
    };
    assert_eq!(out.stats, expected);
    // The head still drafted every round, and its cache kept up.
    assert!(rounds.iter().all(|(_, own)| !own.is_empty()));
    assert_in_sync(&mut spec);
    // More drafts than the round allows is an error, not a longer verify batch.
    let too_many = spec.generate_with_drafts(&prompt, n_tokens, |_, own| {
        own.iter().chain(own).copied().collect()
    });
    assert!(
        matches!(too_many, Err(Error::Speculative(_))),
        "{too_many:?}"
    );
    // The contexts are reset by the next call.
    assert_eq!(spec.generate(&prompt, n_tokens).unwrap().tokens, reference);
}
