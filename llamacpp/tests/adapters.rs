//! LoRA adapters written by llamacpp-synth, and control vectors: they change the
//! logits, removing them restores the base logits bit for bit, and every
//! mismatch is an error.

mod common;

use llamacpp::{Context, ContextParams, Error, LoraAdapter, Model, ModelParams};
use llamacpp_synth::{LoraOptions, MetaValue, SynthOptions, lora_spec, write_gguf, write_lora};

fn ctx_params() -> ContextParams {
    ContextParams::default().n_ctx(128).n_threads(2)
}

#[test]
fn lora_changes_logits_and_scale_zero_or_removal_restores_them() {
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lora.gguf");
    write_lora(&common::dense_spec(), &LoraOptions::new(), &path).unwrap();

    // Created before the adapter is loaded: its graph must grow on the next decode.
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);

    let lora = LoraAdapter::load(&model, &path).unwrap();
    assert_eq!(lora.alpha(), 4.0);
    assert_eq!(lora.meta("adapter.type").as_deref(), Some("lora"));
    assert!(
        lora.metadata()
            .iter()
            .any(|(k, _)| k == "general.architecture")
    );
    assert!(lora.alora_invocation_tokens().unwrap().is_empty());

    ctx.set_lora_adapters(&[(&lora, 1.0)]).unwrap();
    let with = common::prompt_logits(&mut ctx);
    let e = llamacpp_ggml::nmse(&with, &base);
    assert!(e > 1e-3, "adapter barely changed the logits: nmse {e}");

    ctx.set_lora_adapters(&[(&lora, 0.5)]).unwrap();
    let half = common::prompt_logits(&mut ctx);
    assert!(llamacpp_ggml::nmse(&half, &base) > 1e-5 && half != with);

    ctx.set_lora_adapters(&[(&lora, 0.0)]).unwrap();
    assert_eq!(
        common::prompt_logits(&mut ctx),
        base,
        "scale 0 must give the base logits"
    );

    ctx.set_lora_adapters(&[(&lora, 1.0)]).unwrap();
    assert_eq!(
        common::prompt_logits(&mut ctx),
        with,
        "re-applying is deterministic"
    );
    ctx.clear_lora_adapters();
    assert!(ctx.lora_adapters().is_empty());
    assert_eq!(
        common::prompt_logits(&mut ctx),
        base,
        "removal must give the base logits"
    );

    // The context keeps its own handle: dropping the caller's one frees nothing in use.
    ctx.set_lora_adapters(&[(&lora, 1.0)]).unwrap();
    drop(lora);
    assert_eq!(common::prompt_logits(&mut ctx), with);

    // A new context on the same model starts without adapters.
    let mut fresh = Context::new(&model, ctx_params()).unwrap();
    assert_eq!(common::prompt_logits(&mut fresh), base);
}

#[test]
fn two_adapters_compose_and_bad_sets_are_errors() {
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    let mut oa = LoraOptions::new();
    oa.targets = vec!["attn_q".into(), "attn_v".into()];
    write_lora(&common::dense_spec(), &oa, &pa).unwrap();
    let mut ob = LoraOptions::new();
    ob.seed = 11;
    ob.targets = vec!["ffn_down".into()];
    write_lora(&common::dense_spec(), &ob, &pb).unwrap();
    let a = LoraAdapter::load(&model, &pa).unwrap();
    let b = LoraAdapter::load(&model, &pb).unwrap();

    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);
    ctx.set_lora_adapters(&[(&a, 1.0)]).unwrap();
    let only_a = common::prompt_logits(&mut ctx);
    ctx.set_lora_adapters(&[(&a, 1.0), (&b, 1.0)]).unwrap();
    let both = common::prompt_logits(&mut ctx);
    assert!(llamacpp_ggml::nmse(&only_a, &base) > 1e-4);
    assert!(llamacpp_ggml::nmse(&both, &only_a) > 1e-4);
    // Zero scale drops `b` from the set.
    ctx.set_lora_adapters(&[(&a, 1.0), (&b, 0.0)]).unwrap();
    assert_eq!(common::prompt_logits(&mut ctx), only_a);

    assert!(matches!(
        ctx.set_lora_adapters(&[(&a, 1.0), (&a, 2.0)]),
        Err(Error::AdapterListedTwice)
    ));
    assert!(matches!(
        ctx.set_lora_adapters(&[(&a, f32::NAN)]),
        Err(Error::AdapterScale(s)) if s.is_nan()
    ));
    // An adapter of another loaded instance of the same file is still foreign.
    let other = Model::load(common::dense_path(), ModelParams::default()).unwrap();
    let foreign = LoraAdapter::load(&other, &pa).unwrap();
    let mut ctx2 = Context::new(&model, ctx_params()).unwrap();
    assert!(matches!(
        ctx2.set_lora_adapters(&[(&foreign, 1.0)]),
        Err(Error::AdapterModel)
    ));
    // The failed calls left the previous set in place.
    assert_eq!(ctx.lora_adapters().len(), 2);
}

#[test]
fn mismatched_or_malformed_adapters_are_errors() {
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();

    // Another architecture.
    let qwen = dir.path().join("qwen.gguf");
    write_lora(&common::qwen3next_spec(), &LoraOptions::new(), &qwen).unwrap();
    assert!(matches!(
        LoraAdapter::load(&model, &qwen),
        Err(Error::AdapterLoad { path, .. }) if path == qwen
    ));

    // Same architecture, more layers than the base model has.
    let mut deep = SynthOptions::new(llamacpp_synth::Preset::LlamaTiny);
    deep.layers = Some(4);
    let deep_spec = llamacpp_synth::ModelSpec::from_options(&deep).unwrap();
    let deep_path = dir.path().join("deep.gguf");
    write_lora(&deep_spec, &LoraOptions::new(), &deep_path).unwrap();
    assert!(LoraAdapter::load(&model, &deep_path).is_err());

    // Metadata of the wrong type (llama.cpp's getter would abort on it).
    let mut spec = lora_spec(&common::dense_spec(), &LoraOptions::new()).unwrap();
    spec.metadata.set("adapter.lora.alpha", MetaValue::U32(4));
    let typed = dir.path().join("typed.gguf");
    write_gguf(&spec, &typed, false).unwrap();
    assert!(matches!(
        LoraAdapter::load(&model, &typed),
        Err(Error::AdapterLoad { .. })
    ));
    let mut spec = lora_spec(&common::dense_spec(), &LoraOptions::new()).unwrap();
    spec.metadata.set("general.type", MetaValue::I32(1));
    write_gguf(&spec, &typed, false).unwrap();
    assert!(LoraAdapter::load(&model, &typed).is_err());

    // Not an adapter: the base model itself, garbage, a missing file.
    assert!(LoraAdapter::load(&model, common::dense_path()).is_err());
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\0\0\0garbage").unwrap();
    assert!(LoraAdapter::load(&model, &junk).is_err());
    assert!(LoraAdapter::load(&model, dir.path().join("missing.gguf")).is_err());

    // The model still works.
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    assert!(
        common::prompt_logits(&mut ctx)
            .iter()
            .all(|v| v.is_finite())
    );
}

#[test]
fn alora_invocation_tokens_are_read_and_checked() {
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alora.gguf");
    let mut o = LoraOptions::new();
    o.alora_invocation_tokens = vec![5, 6, 7];
    write_lora(&common::dense_spec(), &o, &path).unwrap();
    let lora = LoraAdapter::load(&model, &path).unwrap();
    let ids: Vec<i32> = lora
        .alora_invocation_tokens()
        .unwrap()
        .iter()
        .map(|t| t.id())
        .collect();
    assert_eq!(ids, [5, 6, 7]);

    o.alora_invocation_tokens = vec![5, 1_000_000];
    write_lora(&common::dense_spec(), &o, &path).unwrap();
    let lora = LoraAdapter::load(&model, &path).unwrap();
    assert!(matches!(
        lora.alora_invocation_tokens(),
        Err(Error::InvalidToken { .. })
    ));
}

#[test]
fn lora_on_the_hybrid_model() {
    let model = common::qwen3next();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lora.gguf");
    write_lora(&common::qwen3next_spec(), &LoraOptions::new(), &path).unwrap();
    let lora = LoraAdapter::load(&model, &path).unwrap();
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);
    ctx.set_lora_adapters(&[(&lora, 1.0)]).unwrap();
    let with = common::prompt_logits(&mut ctx);
    assert!(llamacpp_ggml::nmse(&with, &base) > 1e-4);
    ctx.clear_lora_adapters();
    assert_eq!(common::prompt_logits(&mut ctx), base);
}

#[test]
fn adapters_load_while_other_threads_decode() {
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lora.gguf");
    write_lora(&common::dense_spec(), &LoraOptions::new(), &path).unwrap();
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..5 {
                assert_eq!(common::prompt_logits(&mut ctx), base);
            }
        });
        s.spawn(|| {
            for _ in 0..5 {
                let lora = LoraAdapter::load(&model, &path).unwrap();
                drop(lora);
            }
        });
    });
}

#[test]
fn control_vector_changes_logits_and_clearing_restores_them() {
    let model = common::dense();
    let n_embd = model.n_embd();
    let n_layer = model.n_layer();
    let layers = (n_layer - 1) as usize;
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);

    let v: Vec<f32> = (0..n_embd as usize * layers)
        .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.25)
        .collect();
    ctx.set_control_vector(&v, n_embd, 1, n_layer - 1).unwrap();
    let steered = common::prompt_logits(&mut ctx);
    let e = llamacpp_ggml::nmse(&steered, &base);
    assert!(
        e > 1e-4,
        "control vector barely changed the logits: nmse {e}"
    );
    ctx.clear_control_vector();
    assert_eq!(common::prompt_logits(&mut ctx), base);

    // A zero vector is the base model.
    ctx.set_control_vector(&vec![0.0; v.len()], n_embd, 1, n_layer - 1)
        .unwrap();
    assert_eq!(common::prompt_logits(&mut ctx), base);
    ctx.set_control_vector(&v, n_embd, 1, n_layer - 1).unwrap();
    assert_eq!(common::prompt_logits(&mut ctx), steered);
    ctx.clear_control_vector();

    let n = n_embd as usize;
    let bad = [
        ctx.set_control_vector(&v, n_embd + 1, 1, n_layer - 1),
        ctx.set_control_vector(&v[..n - 1], n_embd, 1, n_layer - 1),
        ctx.set_control_vector(&vec![0.1; n * (layers + 1)], n_embd, 1, n_layer - 1),
        ctx.set_control_vector(&[], n_embd, 1, n_layer - 1),
        ctx.set_control_vector(&v, n_embd, 0, n_layer - 1),
        ctx.set_control_vector(&v, n_embd, 1, n_layer),
        ctx.set_control_vector(&v, n_embd, 1, 0),
        ctx.set_control_vector(&vec![f32::NAN; v.len()], n_embd, 1, n_layer - 1),
    ];
    for (i, r) in bad.iter().enumerate() {
        assert!(r.is_err(), "case {i} was accepted");
    }
    assert!(
        matches!(bad[7], Err(Error::ControlVector(m)) if m.contains("finite")),
        "{:?}",
        bad[7]
    );
    assert_eq!(common::prompt_logits(&mut ctx), base);
}

#[test]
fn control_vector_on_the_hybrid_model_applies_to_chosen_layers() {
    let model = common::qwen3next();
    let (n_embd, n_layer) = (model.n_embd(), model.n_layer());
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let base = common::prompt_logits(&mut ctx);
    // Only layer 1's vector given: later layers are zero-padded.
    let v = vec![0.5f32; n_embd as usize];
    ctx.set_control_vector(&v, n_embd, 1, n_layer - 1).unwrap();
    let steered = common::prompt_logits(&mut ctx);
    assert!(llamacpp_ggml::nmse(&steered, &base) > 1e-4);
    // A range that excludes layer 1 leaves only zero vectors active.
    if n_layer > 2 {
        ctx.set_control_vector(&v, n_embd, 2, n_layer - 1).unwrap();
        assert_eq!(common::prompt_logits(&mut ctx), base);
    }
    ctx.clear_control_vector();
    assert_eq!(common::prompt_logits(&mut ctx), base);
}

/// A LoRA pair for `target` with the given shapes of A and B.
fn pair(target: &str, a: Vec<u64>, b: Vec<u64>) -> Vec<llamacpp_synth::TensorSpec> {
    use llamacpp_synth::{Init, TensorSpec, TensorType};
    vec![
        TensorSpec {
            name: format!("{target}.lora_a"),
            shape: a,
            ty: TensorType::F32,
            init: Init::fan_in(64),
        },
        TensorSpec {
            name: format!("{target}.lora_b"),
            shape: b,
            ty: TensorType::F32,
            init: Init::fan_in(64),
        },
    ]
}

#[test]
fn lora_tensors_must_have_the_model_tensors_dimensions() {
    // llama.cpp checks the first two dimensions of each pair only: a pair without the
    // expert dimension made mul_mat_id read (and write) past its tensors, and extra
    // dimensions tripped ggml's asserts in the graph.
    let base = common::qwen3next_spec();
    let model = common::qwen3next();
    let dir = tempfile::tempdir().unwrap();
    let exps = base
        .tensors
        .iter()
        .find(|t| t.name.ends_with("_exps.weight") && t.shape.len() == 3)
        .expect("an expert tensor");
    let (n_in, n_out, n_exp) = (exps.shape[0], exps.shape[1], exps.shape[2]);
    let proj = base
        .tensors
        .iter()
        .find(|t| t.name.ends_with("attn_gate.weight") || t.name.ends_with("ffn_down_shexp.weight"))
        .expect("a projection");
    let (p_in, p_out) = (proj.shape[0], proj.shape[1]);
    let write = |name: &str, tensors| {
        let mut spec = lora_spec(&base, &LoraOptions::new()).unwrap();
        spec.tensors = tensors;
        let path = dir.path().join(name);
        write_gguf(&spec, &path, false).unwrap();
        path
    };
    let refused = [
        (
            "experts-2d.gguf",
            pair(&exps.name, vec![n_in, 4], vec![4, n_out]),
        ),
        (
            "experts-short.gguf",
            pair(&exps.name, vec![n_in, 4, 1], vec![4, n_out, 1]),
        ),
        (
            "experts-4d.gguf",
            pair(
                &exps.name,
                vec![n_in, 4, n_exp, 2],
                vec![4, n_out, n_exp, 2],
            ),
        ),
        (
            "proj-3d.gguf",
            pair(&proj.name, vec![p_in, 4, 2], vec![4, p_out, 2]),
        ),
        (
            "proj-mixed.gguf",
            pair(&proj.name, vec![p_in, 4], vec![4, p_out, 3]),
        ),
    ];
    for (name, tensors) in refused {
        let path = write(name, tensors);
        match LoraAdapter::load(&model, &path) {
            Err(Error::AdapterLoad { reason, .. }) => {
                assert!(reason.contains("shape"), "{name}: {reason}")
            }
            other => panic!("{name}: expected a shape error, got {other:?}"),
        }
    }
    // The same pair with the expert dimension is a valid expert LoRA: it loads and changes
    // the logits.
    let path = write(
        "experts-3d.gguf",
        pair(&exps.name, vec![n_in, 4, n_exp], vec![4, n_out, n_exp]),
    );
    let lora = LoraAdapter::load(&model, &path).unwrap();
    let mut ctx = Context::new(&model, ctx_params()).unwrap();
    let plain = common::prompt_logits(&mut ctx);
    ctx.set_lora_adapters(&[(&lora, 1.0)]).unwrap();
    let adapted = common::prompt_logits(&mut ctx);
    assert!(adapted.iter().all(|v| v.is_finite()));
    assert_ne!(plain, adapted);
}

#[test]
fn lora_tensors_of_integer_type_are_refused() {
    // ggml has no matrix product for integer tensors: the CPU backend would call a NULL
    // dot product at the first decode.
    let model = common::dense();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LoraOptions::new();
    opts.targets = vec!["attn_q".into()];
    let spec = lora_spec(&common::dense_spec(), &opts).unwrap();
    let path = dir.path().join("int.gguf");
    write_gguf(&spec, &path, false).unwrap();
    // Retype one A tensor from F32 to I32 in its tensor info (same element size, so the
    // file stays consistent): name, then n_dims (u32), the dims (u64 each), the type (u32).
    let name = spec.tensors[0].name.as_bytes();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("tensor name in the file");
    let dims_at = at + name.len();
    let n_dims = u32::from_le_bytes(bytes[dims_at..dims_at + 4].try_into().unwrap()) as usize;
    let ty_at = dims_at + 4 + 8 * n_dims;
    assert_eq!(&bytes[ty_at..ty_at + 4], &0u32.to_le_bytes(), "F32 before");
    bytes[ty_at..ty_at + 4].copy_from_slice(&llamacpp_sys::GGML_TYPE_I32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    match LoraAdapter::load(&model, &path) {
        Err(Error::AdapterLoad { reason, .. }) => assert!(reason.contains("type"), "{reason}"),
        other => panic!("expected a type error, got {other:?}"),
    }
}
