//! Decoding on synthetic models: parity with the raw C API, batching, state,
//! sampling, chat templates and threads.

mod common;

use llamacpp::{Batch, Context, ContextParams, Model, SamplerChain, Token};
use llamacpp_ggml::nmse;

fn prompt(model: &Model) -> Vec<Token> {
    model
        .vocab()
        .tokenize("The quick brown fox jumps over the lazy dog", true, false)
        .unwrap()
}

/// Greedy tokens and the logits of every step through the safe API.
fn safe_greedy(model: &Model, n: usize) -> (Vec<i32>, Vec<Vec<f32>>) {
    let mut ctx = Context::new(model, ContextParams::default().n_ctx(256).n_threads(2)).unwrap();
    let p = prompt(model);
    let mut b = Batch::from_tokens(&p, 0, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    let mut sampler = SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .unwrap();
    let (mut toks, mut logits) = (Vec::new(), Vec::new());
    for i in 0..n {
        logits.push(ctx.logits(-1).unwrap().to_vec());
        let t = sampler.sample(&mut ctx, -1).unwrap();
        toks.push(t.id());
        b.clear();
        b.add(t, (p.len() + i) as i32, &[0], true).unwrap();
        ctx.decode(&mut b).unwrap();
    }
    (toks, logits)
}

/// The same loop written directly against llamacpp-sys.
fn raw_greedy(
    model_path: &std::path::Path,
    prompt_ids: &[i32],
    n: usize,
) -> (Vec<i32>, Vec<Vec<f32>>) {
    use llamacpp_sys as sys;
    let path = std::ffi::CString::new(model_path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a plain C-API loop with valid arguments: the model and context are
    // freed at the end; batches from llama_batch_get_one borrow `ids`/`tok`.
    unsafe {
        let model =
            sys::llama_model_load_from_file(path.as_ptr(), sys::llama_model_default_params());
        assert!(!model.is_null());
        let mut cp = sys::llama_context_default_params();
        cp.n_ctx = 256;
        cp.n_threads = 2;
        cp.n_threads_batch = 2;
        let ctx = sys::llama_init_from_model(model, cp);
        let vocab = sys::llama_model_get_vocab(model);
        let n_vocab = sys::llama_vocab_n_tokens(vocab) as usize;
        let mut ids = prompt_ids.to_vec();
        assert_eq!(
            sys::llama_decode(
                ctx,
                sys::llama_batch_get_one(ids.as_mut_ptr(), ids.len() as i32)
            ),
            0
        );
        let (mut toks, mut logits) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let l = std::slice::from_raw_parts(sys::llama_get_logits_ith(ctx, -1), n_vocab);
            logits.push(l.to_vec());
            let mut tok = (0..n_vocab).fold(0usize, |b, i| if l[i] > l[b] { i } else { b }) as i32;
            toks.push(tok);
            assert_eq!(
                sys::llama_decode(ctx, sys::llama_batch_get_one(&mut tok, 1)),
                0
            );
        }
        sys::llama_free(ctx);
        sys::llama_model_free(model);
        (toks, logits)
    }
}

#[test]
fn safe_layer_matches_the_raw_c_api_bit_for_bit() {
    for (model, path) in [
        (common::dense(), common::dense_path()),
        (common::qwen3next(), common::qwen3next_path()),
    ] {
        let ids: Vec<i32> = prompt(&model).iter().map(|t| t.id()).collect();
        let (st, sl) = safe_greedy(&model, 8);
        let (rt, rl) = raw_greedy(&path, &ids, 8);
        assert_eq!(st, rt);
        assert_eq!(sl, rl, "logits differ");
        assert!(sl.iter().flatten().all(|x| x.is_finite()));
    }
}

/// Several sequences decoded together (a prompt per sequence, then single-token steps) give
/// each sequence the logits it gets alone. For the hybrid model this also covers the chunked
/// and the autoregressive Gated Delta Net writing every sequence's state into its own cache cell.
#[test]
fn several_sequences_in_one_batch_match_decoding_each_alone() {
    batched_sequences_match_decoding_each_alone(&common::dense());
    batched_sequences_match_decoding_each_alone(&common::qwen3next());
}

/// Three prompts of different lengths, and the token fed at step `i` after them.
fn three_prompts(model: &Model) -> (Vec<Vec<Token>>, impl Fn(usize) -> Token + '_) {
    let vocab = model.vocab();
    let texts = ["hello world", "a different prompt here", "third"];
    let seqs: Vec<Vec<Token>> = texts
        .iter()
        .map(|t| vocab.tokenize(t, true, false).unwrap())
        .collect();
    (seqs, move |i: usize| vocab.token(5 + i as i32).unwrap())
}

/// Per sequence decoded alone: the logits after its prompt, then after each of `steps` tokens.
fn decoded_alone(
    model: &Model,
    seqs: &[Vec<Token>],
    steps: usize,
    next: &impl Fn(usize) -> Token,
) -> Vec<Vec<Vec<f32>>> {
    let mut alone = Vec::new();
    for s in seqs {
        let mut ctx = Context::new(model, ContextParams::default().n_ctx(128)).unwrap();
        ctx.decode(&mut Batch::from_tokens(s, 0, 0).unwrap())
            .unwrap();
        let mut logits = vec![ctx.logits(-1).unwrap().to_vec()];
        for i in 0..steps {
            let mut b = Batch::new(1, 1).unwrap();
            b.add(next(i), (s.len() + i) as i32, &[0], true).unwrap();
            ctx.decode(&mut b).unwrap();
            logits.push(ctx.logits(0).unwrap().to_vec());
        }
        alone.push(logits);
    }
    alone
}

/// Decodes `steps` tokens for every sequence of `seqs` in one batch per step and checks each
/// sequence's logits against `alone`.
fn steps_together_match(
    ctx: &mut Context<'_>,
    seqs: &[Vec<Token>],
    steps: usize,
    next: &impl Fn(usize) -> Token,
    alone: &[Vec<Vec<f32>>],
) {
    for i in 0..steps {
        let mut b = Batch::new(seqs.len(), 1).unwrap();
        for (sid, s) in seqs.iter().enumerate() {
            b.add(next(i), (s.len() + i) as i32, &[sid as i32], true)
                .unwrap();
        }
        ctx.decode(&mut b).unwrap();
        for (sid, a) in alone.iter().enumerate() {
            let e = nmse(ctx.logits(sid as i32).unwrap(), &a[i + 1]);
            assert!(e < 1e-4, "sequence {sid}, step {i}: nmse {e}");
        }
    }
}

fn batched_sequences_match_decoding_each_alone(model: &Model) {
    let (seqs, next) = three_prompts(model);
    let steps = 3;
    let alone = decoded_alone(model, &seqs, steps, &next);
    let total: usize = seqs.iter().map(Vec::len).sum();
    let n = seqs.len();
    let mut ctx = Context::new(
        model,
        ContextParams::default().n_ctx(384).n_seq_max(n as u32),
    )
    .unwrap();
    let mut b = Batch::new(total, 1).unwrap();
    let mut last = Vec::new();
    for (sid, s) in seqs.iter().enumerate() {
        for (i, &t) in s.iter().enumerate() {
            b.add(t, i as i32, &[sid as i32], i + 1 == s.len()).unwrap();
        }
        last.push((b.len() - 1) as i32);
    }
    ctx.decode(&mut b).unwrap();
    for (sid, idx) in last.iter().enumerate() {
        let e = nmse(ctx.logits(*idx).unwrap(), &alone[sid][0]);
        assert!(e < 1e-4, "sequence {sid}, prompt: nmse {e}");
    }
    steps_together_match(&mut ctx, &seqs, steps, &next, &alone);
}

/// Sequences whose prompts were decoded one at a time, last sequence first, then decoded
/// together: the recurrent cache holds their states in the reverse of the batch's order and
/// swaps cells, so each sequence's input state is another one's output cell. Every sequence
/// must still get the logits it gets alone (patch 0041's Gated Delta Net reads the input states
/// from the cache by row id, and must read them all before writing any).
#[test]
fn sequences_started_apart_in_reverse_order_match_decoding_each_alone() {
    let model = common::qwen3next();
    let (seqs, next) = three_prompts(&model);
    let steps = 3;
    let alone = decoded_alone(&model, &seqs, steps, &next);
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(384)
            .n_seq_max(seqs.len() as u32),
    )
    .unwrap();
    for (sid, s) in seqs.iter().enumerate().rev() {
        let mut b = Batch::new(s.len(), 1).unwrap();
        for (i, &t) in s.iter().enumerate() {
            b.add(t, i as i32, &[sid as i32], i + 1 == s.len()).unwrap();
        }
        ctx.decode(&mut b).unwrap();
        let e = nmse(ctx.logits(-1).unwrap(), &alone[sid][0]);
        assert!(e < 1e-4, "sequence {sid}, prompt: nmse {e}");
    }
    steps_together_match(&mut ctx, &seqs, steps, &next, &alone);
}

#[test]
fn state_round_trip_keeps_logits_for_dense_and_hybrid_models() {
    for model in [common::dense(), common::qwen3next()] {
        let vocab = model.vocab();
        let p = prompt(&model);
        let next = vocab.token(5).unwrap();
        let mut ctx = Context::new(&model, ContextParams::default().n_ctx(128)).unwrap();
        ctx.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
            .unwrap();
        let whole = ctx.state().unwrap();
        let seq = ctx.seq_state(0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.bin");
        ctx.save_state_file(&file, &p).unwrap();
        let step = |ctx: &mut Context<'_>| {
            let mut b = Batch::new(1, 1).unwrap();
            b.add(next, p.len() as i32, &[0], true).unwrap();
            ctx.decode(&mut b).unwrap();
            ctx.logits(0).unwrap().to_vec()
        };
        let reference = step(&mut ctx);
        let mut fresh = Context::new(&model, ContextParams::default().n_ctx(128)).unwrap();
        fresh.set_state(&whole).unwrap();
        assert!(nmse(&step(&mut fresh), &reference) <= 1e-5);
        fresh.clear_memory(true);
        fresh.set_seq_state(&seq, 0).unwrap();
        assert!(nmse(&step(&mut fresh), &reference) <= 1e-5);
        fresh.clear_memory(true);
        assert_eq!(fresh.load_state_file(&file, 1024).unwrap(), p);
        assert!(nmse(&step(&mut fresh), &reference) <= 1e-5);
        assert!(fresh.set_seq_state(&seq[..seq.len() / 2], 0).is_err());
    }
}

#[test]
fn seeded_sampling_is_deterministic_and_grammar_constrains() {
    let model = common::dense();
    let run = |seed: u32| {
        let mut ctx = Context::new(&model, ContextParams::default().n_ctx(128)).unwrap();
        let mut s = SamplerChain::builder(model.vocab())
            .top_k(50)
            .temp(1.0)
            .dist(seed)
            .build()
            .unwrap();
        let generator = llamacpp::generate::Generator::new(
            &mut ctx,
            &mut s,
            &prompt(&model),
            0,
            llamacpp::generate::StopAt {
                max_tokens: 12,
                stop_strings: vec![],
            },
        )
        .unwrap();
        generator.collect_text().unwrap()
    };
    assert_eq!(run(7), run(7));
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(128)).unwrap();
    let mut s = SamplerChain::builder(model.vocab())
        .grammar("root ::= \"yes\" | \"no\"", "root")
        .greedy()
        .build()
        .unwrap();
    let p = prompt(&model);
    let mut generator = llamacpp::generate::Generator::new(
        &mut ctx,
        &mut s,
        &p,
        0,
        llamacpp::generate::StopAt {
            max_tokens: 8,
            stop_strings: vec![],
        },
    )
    .unwrap();
    let mut text = String::new();
    while let Some(piece) = generator.next_piece() {
        match piece {
            Ok(p) => text.push_str(&p),
            Err(_) => break, // the grammar is complete: nothing else may follow
        }
        if text == "yes" || text == "no" {
            break;
        }
    }
    assert!(text == "yes" || text == "no", "{text:?}");
}

#[test]
fn chat_template_of_the_model_formats() {
    let model = common::dense();
    let tmpl = model
        .chat_template(None)
        .expect("synthetic models carry a chat template");
    let msgs = [llamacpp::chat::ChatMessage::new("user", "hi")];
    let text = llamacpp::chat::apply_template(&tmpl, &msgs, true).unwrap();
    assert!(text.contains("hi") && text.contains("assistant"), "{text}");
}

#[test]
fn threads_share_one_model() {
    let model = common::qwen3next();
    let (reference, _) = safe_greedy(&model, 6);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| safe_greedy(&model, 6).0))
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), reference);
        }
    });
}

#[test]
fn tokenizer_round_trips_and_streams_utf8() {
    let model = common::dense();
    let vocab = model.vocab();
    for text in ["plain ascii text", "héllo wörld — ünïcode ✓ 日本語 😀"] {
        let toks = vocab.tokenize(text, false, false).unwrap();
        assert_eq!(vocab.detokenize(&toks, false, false).unwrap(), text);
        let mut d = llamacpp::Utf8Decoder::default();
        let mut streamed = String::new();
        for t in &toks {
            streamed.push_str(&d.push(&vocab.piece_bytes(*t, false).unwrap()));
        }
        streamed.push_str(&d.finish());
        assert_eq!(streamed, text);
    }
}

#[test]
fn borrowed_token_slices_decode_like_batches() {
    for model in [common::dense(), common::qwen3next()] {
        let p = prompt(&model);
        let params = || ContextParams::default().n_ctx(256).n_batch(64).n_threads(2);
        // Reference: explicit batches with positions 0.. and then the continuation.
        let mut a = Context::new(&model, params()).unwrap();
        let mut b = Batch::from_tokens(&p, 0, 0).unwrap();
        a.decode(&mut b).unwrap();
        let next = model.vocab().token(7).unwrap();
        b.clear();
        b.add(next, p.len() as i32, &[0], true).unwrap();
        a.decode(&mut b).unwrap();
        // Borrowed slices: positions continue from the sequence's last one.
        let mut c = Context::new(&model, params()).unwrap();
        c.decode_tokens(&p).unwrap();
        assert!(c.logits(0).is_err(), "only the last token has logits");
        c.decode_tokens(&[next]).unwrap();
        assert_eq!(a.logits(-1).unwrap(), c.logits(-1).unwrap());
        assert_eq!(c.seq_pos_max(0).unwrap(), Some(p.len() as i32));
        // The same checks as for batches.
        assert!(matches!(
            c.decode_tokens(&[]),
            Err(llamacpp::Error::EmptyBatch)
        ));
        let long = vec![next; 65];
        assert!(c.decode_tokens(&long).is_err(), "more tokens than n_batch");
        c.decode_tokens(&[next]).unwrap();
    }
}

/// `max_tokens` is the number of tokens generated, not one more.
#[test]
fn generator_stops_at_max_tokens() {
    let model = common::dense();
    let vocab = model.vocab();
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(128)).unwrap();
    // End-of-generation tokens banned, so only the count can stop it.
    let bans: Vec<(llamacpp::Token, f32)> = (0..vocab.n_tokens())
        .map(|i| vocab.token(i).unwrap())
        .filter(|&t| vocab.is_eog(t))
        .map(|t| (t, f32::NEG_INFINITY))
        .collect();
    let mut s = SamplerChain::builder(vocab)
        .logit_bias(&bans)
        .greedy()
        .build()
        .unwrap();
    let p = prompt(&model);
    let mut generator = llamacpp::generate::Generator::new(
        &mut ctx,
        &mut s,
        &p,
        0,
        llamacpp::generate::StopAt {
            max_tokens: 5,
            stop_strings: vec![],
        },
    )
    .unwrap();
    while let Some(piece) = generator.next_piece() {
        piece.unwrap();
    }
    assert_eq!(generator.tokens().len(), 5);
    // The last one ended generation by count, so it was not fed back.
    assert_eq!(generator.decoded_tokens().len(), 4);
}
