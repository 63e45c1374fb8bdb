//! Misuse of live contexts (parameters, memory operations, state, encode) that would
//! abort, crash or hang inside llama.cpp is an `Err` here, and the context stays usable.

mod common;

use llamacpp::{Batch, Context, ContextParams, Error, Model, ModelParams, Token};

fn small() -> ContextParams {
    ContextParams::default().n_ctx(256).n_threads(1)
}

fn prompt(model: &Model, n: usize) -> Vec<Token> {
    let vocab = model.vocab();
    (0..n)
        .map(|i| vocab.token(10 + i as i32).unwrap())
        .collect()
}

/// Decodes `n` tokens into `seq` at positions 0..n.
fn fill(ctx: &mut Context<'_>, seq: i32, n: usize) {
    let p = prompt(ctx.model(), n);
    let mut b = Batch::from_tokens(&p, 0, seq).unwrap();
    ctx.decode(&mut b).unwrap();
}

/// One more token after whatever sequence 0 holds: the context still works.
fn still_decodes(ctx: &mut Context<'_>) {
    let next = ctx.seq_pos_max(0).unwrap().map_or(0, |p| p + 1);
    let t = ctx.model().vocab().token(5).unwrap();
    let mut b = Batch::new(1, 1).unwrap();
    b.add(t, next, &[0], true).unwrap();
    ctx.decode(&mut b).unwrap();
    assert!(ctx.logits(-1).unwrap().iter().all(|x| x.is_finite()));
}

#[test]
fn n_batch_below_n_seq_max_is_refused() {
    let model = common::dense();
    let r = Context::new(&model, small().n_batch(2).n_ubatch(2).n_seq_max(4));
    assert!(
        matches!(
            r,
            Err(Error::OutOfRange {
                what: "n_batch",
                ..
            })
        ),
        "{r:?}"
    );
    // Equal is fine, and so is a smaller physical batch.
    let mut ctx = Context::new(&model, small().n_batch(4).n_ubatch(4).n_seq_max(4)).unwrap();
    fill(&mut ctx, 0, 3);
    for model in [common::dense(), common::qwen3next()] {
        let mut ctx = Context::new(&model, small().n_batch(4).n_ubatch(1).n_seq_max(4)).unwrap();
        fill(&mut ctx, 3, 4);
        let r = Context::new(&model, small().n_batch(1).n_seq_max(2));
        assert!(matches!(r, Err(Error::OutOfRange { .. })), "{r:?}");
    }
}

#[test]
fn partial_seq_cp_across_streams_is_refused() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small().n_seq_max(2).kv_unified(false)).unwrap();
    fill(&mut ctx, 0, 6);
    assert!(matches!(
        ctx.seq_cp(0, 1, Some(1), Some(3)),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        ctx.seq_cp(0, 1, Some(2), None),
        Err(Error::Unsupported(_))
    ));
    assert_eq!(ctx.seq_pos_max(1).unwrap(), None);
    // An empty range copies nothing (llama.cpp would copy the whole sequence).
    ctx.seq_cp(0, 1, Some(0), Some(0)).unwrap();
    ctx.seq_cp(0, 1, Some(4), Some(4)).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), None);
    // The whole sequence is fine.
    ctx.seq_cp(0, 1, None, None).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(5));
    still_decodes(&mut ctx);
}

#[test]
fn partial_seq_cp_in_a_unified_cache_works() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small().n_seq_max(2).kv_unified(true)).unwrap();
    fill(&mut ctx, 0, 6);
    ctx.seq_cp(0, 1, Some(1), Some(3)).unwrap();
    assert_eq!(ctx.seq_pos_min(1).unwrap(), Some(1));
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(2));
    // An empty range copies nothing here either.
    ctx.seq_cp(0, 1, Some(5), Some(5)).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(2));
}

#[test]
fn position_shifts_on_mrope_models_are_refused() {
    let model = Model::load(
        llamacpp_synth::tiny_model_path(llamacpp_synth::Preset::Qwen35MoeTiny),
        ModelParams::default(),
    )
    .unwrap();
    let mut ctx = Context::new(&model, small()).unwrap();
    fill(&mut ctx, 0, 4);
    assert!(matches!(
        ctx.seq_add(0, Some(1), None, 2),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        ctx.seq_add(0, None, None, 0),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        ctx.seq_div(0, None, None, 2),
        Err(Error::Unsupported(_))
    ));
    still_decodes(&mut ctx);
}

#[test]
fn seq_div_needs_a_positive_divisor() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    fill(&mut ctx, 0, 4);
    for d in [0, -1, -2, i32::MIN] {
        assert!(
            matches!(ctx.seq_div(0, None, None, d), Err(Error::OutOfRange { .. })),
            "divisor {d}"
        );
    }
    assert_eq!(ctx.seq_pos_min(0).unwrap(), Some(0));
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(3));
    ctx.seq_div(0, None, None, 1).unwrap();
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(3));
}

#[test]
fn encode_on_a_decoder_only_model_is_refused() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    let mut b = Batch::from_tokens(&prompt(&model, 3), 0, 0).unwrap();
    assert!(matches!(ctx.encode(&mut b), Err(Error::Unsupported(_))));
    still_decodes(&mut ctx);
}

#[test]
fn encode_on_a_hybrid_model_is_refused() {
    let model = common::qwen3next();
    let mut ctx = Context::new(&model, small()).unwrap();
    let mut b = Batch::from_tokens(&prompt(&model, 3), 0, 0).unwrap();
    assert!(matches!(ctx.encode(&mut b), Err(Error::Unsupported(_))));
    still_decodes(&mut ctx);
}

#[test]
fn a_vocab_only_model_gets_no_context() {
    let model = Model::load(
        common::dense_path(),
        ModelParams::default().vocab_only(true),
    )
    .unwrap();
    // The vocabulary works...
    assert!(
        !model
            .vocab()
            .tokenize("hello", true, false)
            .unwrap()
            .is_empty()
    );
    // ...but there are no weights to run.
    let r = Context::new(&model, small());
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
}

#[test]
fn thread_counts_are_bounded() {
    let model = common::dense();
    for n in [0, -1, i32::MIN, 100_000, i32::MAX] {
        let r = Context::new(&model, small().n_threads(n));
        assert!(
            matches!(r, Err(Error::OutOfRange { .. })),
            "{n} threads: {r:?}"
        );
        let r = Context::new(&model, small().n_threads(n).thread_pool(true));
        assert!(
            matches!(r, Err(Error::OutOfRange { .. })),
            "{n} pooled threads: {r:?}"
        );
    }
    let mut ctx = Context::new(&model, small()).unwrap();
    for n in [0, -1, 100_000, i32::MAX] {
        assert!(matches!(
            ctx.set_threads(n, 1),
            Err(Error::OutOfRange { .. })
        ));
        assert!(matches!(
            ctx.set_threads(1, n),
            Err(Error::OutOfRange { .. })
        ));
    }
    still_decodes(&mut ctx);
}

#[test]
fn a_thread_pool_is_not_asked_for_more_threads_than_it_has() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small().n_threads(1).thread_pool(true)).unwrap();
    // The pool has one worker: more would index past its thread states.
    assert!(matches!(
        ctx.set_threads(2, 1),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        ctx.set_threads(1, 4),
        Err(Error::OutOfRange { .. })
    ));
    ctx.set_threads(1, 1).unwrap();
    still_decodes(&mut ctx);
}

fn saved_state_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<Token>) {
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    let p = prompt(&model, 4);
    ctx.decode(&mut Batch::from_tokens(&p, 0, 0).unwrap())
        .unwrap();
    let path = dir.join("state.bin");
    ctx.save_state_file(&path, &p).unwrap();
    (path, p)
}

#[test]
fn load_state_file_with_a_huge_token_limit_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let (path, p) = saved_state_file(dir.path());
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    let tokens = ctx.load_state_file(&path, usize::MAX).unwrap();
    assert_eq!(tokens, p);
    still_decodes(&mut ctx);
}

#[test]
fn bad_state_files_are_errors_and_leave_the_context_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved_state_file(dir.path());
    let good = std::fs::read(&path).unwrap();
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    let bad = dir.path().join("bad.bin");
    let mut cases: Vec<Vec<u8>> = (0..=16)
        .map(|n| good[..n.min(good.len())].to_vec())
        .collect();
    // Truncated in the middle of the state.
    cases.push(good[..good.len() / 2].to_vec());
    cases.push(good[..good.len() - 1].to_vec());
    // A header declaring a huge token count.
    for n_tokens in [u32::MAX, 1 << 30, 100_000] {
        let mut v = good.clone();
        v[8..12].copy_from_slice(&n_tokens.to_le_bytes());
        cases.push(v);
    }
    for (i, bytes) in cases.iter().enumerate() {
        std::fs::write(&bad, bytes).unwrap();
        for max in [0, 4, 1000, usize::MAX] {
            let r = ctx.load_state_file(&bad, max);
            assert!(r.is_err() || max >= 4, "case {i} max {max}: {r:?}");
        }
        still_decodes(&mut ctx);
        ctx.clear_memory(true);
    }
    // In-memory state buffers.
    let mut src = Context::new(&model, small()).unwrap();
    fill(&mut src, 0, 4);
    let state = src.state().unwrap();
    for bytes in (0..=16)
        .map(|n| &state[..n])
        .chain([&state[..state.len() / 2], &state[..state.len() - 1]])
    {
        assert!(ctx.set_state(bytes).is_err());
        still_decodes(&mut ctx);
        ctx.clear_memory(true);
    }
    ctx.set_state(&state).unwrap();
    still_decodes(&mut ctx);
    // One sequence's state, in memory and in files.
    let seq = src.seq_state(0).unwrap();
    let seq_file = dir.path().join("seq.bin");
    src.save_seq_state_file(&seq_file, 0, &prompt(&model, 4))
        .unwrap();
    let seq_bytes = std::fs::read(&seq_file).unwrap();
    for n in (0..=16).chain([seq.len() / 2, seq.len() - 1]) {
        ctx.clear_memory(true);
        assert!(ctx.set_seq_state(&seq[..n], 0).is_err());
        still_decodes(&mut ctx);
    }
    for n in (0..=16).chain([seq_bytes.len() / 2, seq_bytes.len() - 1]) {
        ctx.clear_memory(true);
        std::fs::write(&bad, &seq_bytes[..n]).unwrap();
        assert!(ctx.load_seq_state_file(&bad, 0).is_err());
        still_decodes(&mut ctx);
    }
    let mut huge = seq_bytes.clone();
    huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&bad, &huge).unwrap();
    assert!(ctx.load_seq_state_file(&bad, 0).is_err());
    still_decodes(&mut ctx);
}

#[test]
fn positions_near_i32_max_are_errors_in_generate() {
    let model = common::dense();
    let mut ctx = Context::new(&model, small()).unwrap();
    let p = prompt(&model, 4);
    let r = llamacpp::generate::feed(&mut ctx, &p, i32::MAX - 1);
    assert!(matches!(r, Err(Error::OutOfRange { .. })), "{r:?}");
    let mut sampler = llamacpp::SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .unwrap();
    let stop = llamacpp::generate::StopAt {
        max_tokens: 8,
        stop_strings: Vec::new(),
    };
    let r =
        llamacpp::generate::Generator::new(&mut ctx, &mut sampler, &p, i32::MAX - 2, stop.clone());
    assert!(r.is_err());
    // A prompt that ends exactly at the last position fits; nothing can follow it.
    ctx.clear_memory(true);
    let r = llamacpp::generate::feed(&mut ctx, &p, i32::MAX - 3);
    assert!(r.is_ok(), "{r:?}");
    ctx.clear_memory(true);
    // ...but a generator after it has no position for the next token.
    let r =
        llamacpp::generate::Generator::new(&mut ctx, &mut sampler, &p, i32::MAX - 3, stop.clone());
    assert!(matches!(r, Err(Error::OutOfRange { .. })), "{:?}", r.err());
    // A generator whose next token goes at i32::MAX decodes it, then stops with an error.
    ctx.clear_memory(true);
    let vocab = model.vocab();
    let eog: Vec<(Token, f32)> = (0..vocab.n_tokens())
        .map(|id| vocab.token(id).unwrap())
        .filter(|&t| vocab.is_eog(t))
        .map(|t| (t, f32::NEG_INFINITY))
        .collect();
    let mut sampler = llamacpp::SamplerChain::builder(model.vocab())
        .logit_bias(&eog)
        .greedy()
        .build()
        .unwrap();
    let mut g =
        llamacpp::generate::Generator::new(&mut ctx, &mut sampler, &p, i32::MAX - 5, stop).unwrap();
    assert!(matches!(g.next_piece(), Some(Ok(_))));
    assert_eq!(g.position(), i32::MAX);
    assert!(matches!(
        g.next_piece(),
        Some(Err(Error::OutOfRange { .. }))
    ));
    // Chunks of n_batch: the second would start past i32::MAX.
    let mut ctx = Context::new(&model, small().n_batch(4).n_ubatch(4)).unwrap();
    let long = prompt(&model, 5);
    let r = llamacpp::generate::feed(&mut ctx, &long, i32::MAX - 3);
    assert!(matches!(r, Err(Error::OutOfRange { .. })), "{r:?}");
    // Nothing was decoded.
    assert_eq!(ctx.seq_pos_max(0).unwrap(), None);
}

#[test]
fn a_yarn_scale_too_small_for_the_model_is_refused() {
    use llamacpp::RopeScaling;
    let model = common::dense();
    let before = model.n_ctx_train();
    let r = Context::new(
        &model,
        small()
            .rope_scaling(RopeScaling::Yarn)
            .rope_freq_scale(1e-30),
    );
    assert!(
        matches!(
            r,
            Err(Error::OutOfRange {
                what: "rope_freq_scale",
                ..
            })
        ),
        "{r:?}"
    );
    // llama.cpp would have stored a quotient that does not fit its u32.
    assert_eq!(model.n_ctx_train(), before);
    let mut ctx = Context::new(&model, small()).unwrap();
    fill(&mut ctx, 0, 4);
}

/// A YaRN context re-states the shared model's training context while it is created:
/// other threads creating contexts and decoding on the same model meanwhile are fine.
#[test]
fn yarn_contexts_are_created_while_others_decode() {
    use llamacpp::RopeScaling;
    let model = common::dense();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..4 {
                let params = small()
                    .rope_scaling(RopeScaling::Yarn)
                    .rope_freq_scale(0.5)
                    .yarn_orig_ctx(128);
                let mut ctx = Context::new(&model, params).unwrap();
                fill(&mut ctx, 0, 2);
            }
        });
        s.spawn(|| {
            let mut ctx = Context::new(&model, small()).unwrap();
            for _ in 0..8 {
                ctx.clear_memory(true);
                fill(&mut ctx, 0, 2);
                assert!(Context::new(&model, small()).is_ok());
            }
        });
    });
    // What llama.cpp stores for these contexts: yarn_orig_ctx / rope_freq_scale.
    assert_eq!(model.n_ctx_train(), 256);
}

fn run_with(params: ModelParams) -> llamacpp::Result<()> {
    let model = Model::load(common::dense_path(), params)?;
    let mut ctx = Context::new(&model, small())?;
    fill(&mut ctx, 0, 3);
    still_decodes(&mut ctx);
    Ok(())
}

fn cpu_name() -> String {
    llamacpp::backend::devices()
        .iter()
        .map(|d| d.name.clone())
        .find(|n| n.eq_ignore_ascii_case("cpu"))
        .expect("a CPU device")
}

#[test]
fn a_tensor_override_naming_the_cpu_runs() {
    let p = ModelParams::default()
        .tensor_buffer_override("blk", Some(&cpu_name()))
        .unwrap();
    run_with(p).unwrap();
}

#[test]
fn a_device_list_naming_the_cpu_runs() {
    let p = ModelParams::default()
        .devices(&[cpu_name().as_str()])
        .unwrap();
    run_with(p).unwrap();
}

/// llama.cpp builds a tensor-parallel meta device over whatever is listed; over the CPU
/// the first decode crashed (SIGSEGV in `ggml_compute_forward_set_rows`).
#[test]
fn tensor_split_mode_with_the_cpu_listed_fails_cleanly() {
    use llamacpp::SplitMode;
    let cpu = cpu_name();
    let listed = || ModelParams::default().devices(&[cpu.as_str()]).unwrap();
    // Either order of the builder calls.
    for p in [
        listed().split_mode(SplitMode::Tensor),
        ModelParams::default()
            .split_mode(SplitMode::Tensor)
            .devices(&[cpu.as_str()])
            .unwrap(),
    ] {
        let r = run_with(p);
        assert!(matches!(r, Err(Error::ModelLoad { .. })), "{r:?}");
    }
}

#[test]
fn tensor_split_mode_without_gpus_fails_cleanly() {
    let r = run_with(ModelParams::default().split_mode(llamacpp::SplitMode::Tensor));
    assert!(matches!(r, Err(Error::ModelLoad { .. })), "{r:?}");
}

#[test]
fn row_split_mode_without_gpus_runs() {
    run_with(ModelParams::default().split_mode(llamacpp::SplitMode::Row)).unwrap();
}

/// A graph observer runs inside `decode`, which holds the model's adapter lock: one
/// that creates a context that must write the model (YaRN) waited for that lock forever.
#[test]
fn a_callback_inside_decode_cannot_deadlock_on_the_model() {
    use llamacpp::RopeScaling;
    use std::sync::{Arc, Mutex};
    // A static rather than a leaked box: LeakSanitizer (.ci/sanitize) counts a box leaked on
    // purpose as a leak, and memory a static holds as reachable.
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    let model: &'static Model = MODEL.get_or_init(common::dense);
    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&results);
    let params = small().observe_graph(move |_| {
        let mut seen = seen.lock().unwrap();
        if seen.len() < 2 {
            let yarn = small()
                .rope_scaling(RopeScaling::Yarn)
                .rope_freq_scale(0.5)
                .yarn_orig_ctx(128);
            seen.push(Context::new(model, yarn).map(|_| ()));
            // Reading the model again from inside the decode is fine.
            seen.push(Context::new(model, small()).map(|_| ()));
        }
    });
    let mut ctx = Context::new(model, params).unwrap();
    fill(&mut ctx, 0, 2);
    let results = results.lock().unwrap();
    assert!(
        matches!(results[0], Err(Error::Unsupported(_))),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
}
