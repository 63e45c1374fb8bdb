//! `Model::from_metadata` builds the same model as the file `llamacpp-synth` writes, without
//! the file (llama.cpp's `llama_model_init_from_user`, with the values of
//! `llamacpp_synth::InMemoryFill`), and reports what goes wrong while filling as errors.

mod common;

use std::cell::Cell;

use common::synth::{greedy, load_cpu};
use llamacpp::llamacpp_ggml::gguf::{Gguf, MetaValue};
use llamacpp::{Error, KvOverride, Model, ModelParams, TensorData};
use llamacpp_synth::{InMemoryFill, LinearLayout, ModelSpec, Preset, SynthOptions, cached_model};

fn cpu() -> ModelParams {
    llamacpp::backend::set_logging(false);
    ModelParams::default().n_gpu_layers(0)
}

/// Builds the model of `meta` in memory on the CPU, filling its tensors from `values`.
fn build_from(meta: &Gguf, values: &mut InMemoryFill<'_>) -> llamacpp::Result<Model> {
    Model::from_metadata(meta, cpu(), |t: &mut TensorData<'_>| {
        let (name, ty, n) = (t.name().to_owned(), t.tensor_type(), t.n_bytes());
        values.fill(&name, ty, n, |offset, bytes| t.write(offset, bytes))
    })
}

/// Builds `spec`'s model in memory on the CPU with synth's values.
fn build(spec: &ModelSpec) -> Result<Model, String> {
    let mut values = InMemoryFill::new(spec).map_err(|e| e.to_string())?;
    let meta = spec.metadata_gguf().map_err(|e| e.to_string())?;
    let model = build_from(&meta, &mut values).map_err(|e| e.to_string())?;
    values.finish().map_err(|e| e.to_string())?;
    Ok(model)
}

fn in_memory(opts: &SynthOptions) -> Result<Model, String> {
    build(&ModelSpec::from_options(opts).map_err(|e| e.to_string())?)
}

fn tiny_spec() -> ModelSpec {
    ModelSpec::from_options(&SynthOptions::new(Preset::LlamaTiny)).unwrap()
}

#[test]
fn memory_models_decode_like_their_files() {
    for preset in Preset::TINY {
        // in memory, llama.cpp creates fused expert tensors for the hybrid archs
        let mut opts = SynthOptions::new(preset);
        opts.fused_experts = matches!(preset.arch(), "qwen3next" | "qwen35moe");
        let file = load_cpu(&cached_model(&opts).unwrap()).unwrap();
        let mem = in_memory(&opts).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert_eq!(mem.architecture(), file.architecture());
        let shape = |m: &Model| (m.n_layer(), m.n_embd(), m.vocab().n_tokens());
        assert_eq!(shape(&mem), shape(&file), "{preset}");
        let hparams = |m: &Model| (m.n_head(), m.n_head_kv(), m.n_ctx_train(), m.rope_type());
        assert_eq!(hparams(&mem), hparams(&file), "{preset}");
        // llama.cpp counts these from a file's tensors: a model built in memory has none
        assert_eq!((mem.n_params(), mem.size()), (0, 0), "{preset}");
        let prompt = file
            .vocab()
            .tokenize("It is important to test the things you build.", true, false)
            .unwrap();
        assert_eq!(
            greedy(&mem, &prompt, 8),
            greedy(&file, &prompt, 8),
            "{preset}"
        );
    }
}

#[test]
fn file_only_layouts_are_refused() {
    let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
    o.layout = LinearLayout::Legacy;
    assert!(in_memory(&o).is_err());
    o.fused_experts = true;
    assert!(in_memory(&o).is_err());
    // separate experts: llama.cpp would create (and use) a fused tensor instead
    assert!(in_memory(&SynthOptions::new(Preset::Qwen35MoeTiny)).is_err());
}

#[test]
fn tensor_data_describes_the_tensor() {
    let spec = tiny_spec();
    let meta = spec.metadata_gguf().unwrap();
    let mut values = InMemoryFill::new(&spec).unwrap();
    let mut seen = 0;
    Model::from_metadata(&meta, cpu(), |t| {
        if let Some(s) = spec.tensors.iter().find(|s| s.name == t.name()) {
            assert_eq!(t.tensor_type(), Some(s.ty), "{}", s.name);
            assert_eq!(t.ggml_type(), s.ty.ggml());
            assert_eq!(t.n_bytes() as u64, s.n_bytes());
            let rows: i64 = t.shape()[1..].iter().product();
            assert_eq!(t.shape()[0] * rows, s.shape.iter().product::<u64>() as i64);
            seen += 1;
        }
        let (name, ty, n) = (t.name().to_owned(), t.tensor_type(), t.n_bytes());
        values.fill(&name, ty, n, |offset, bytes| t.write(offset, bytes))
    })
    .unwrap();
    assert_eq!(seen, spec.tensors.len());
}

#[test]
fn a_callback_error_fails_the_build_and_stops_the_callbacks() {
    let meta = tiny_spec().metadata_gguf().unwrap();
    let calls = Cell::new(0);
    let e = Model::from_metadata(&meta, cpu(), |t| {
        calls.set(calls.get() + 1);
        Err(format!("no values for {}", t.name()))
    })
    .unwrap_err();
    assert_eq!(calls.get(), 1, "fill is not called after an error");
    match e {
        Error::ModelBuild(m) => assert!(m.contains("no values for"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_panicking_callback_is_an_error() {
    let meta = tiny_spec().metadata_gguf().unwrap();
    let calls = Cell::new(0);
    let e = Model::from_metadata(&meta, cpu(), |_| -> Result<(), String> {
        calls.set(calls.get() + 1);
        panic!("boom in fill")
    })
    .unwrap_err();
    assert_eq!(calls.get(), 1);
    match e {
        Error::CallbackPanicked { callback, message } => {
            assert_eq!(
                (callback, message.as_str()),
                ("set_tensor_data", "boom in fill")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn writes_out_of_range_are_errors() {
    let meta = tiny_spec().metadata_gguf().unwrap();
    let mut checked = false;
    let e = Model::from_metadata(&meta, cpu(), |t| {
        let n = t.n_bytes();
        assert!(matches!(t.write(n, &[0]), Err(Error::OutOfRange { .. })));
        assert!(
            t.write(usize::MAX, &[0, 0]).is_err(),
            "offset + len overflows"
        );
        assert!(t.write(1, &vec![0; n]).is_err());
        t.write(n, &[]).unwrap(); // empty, at the end: in range
        checked = true;
        t.write(0, &vec![0; n + 1])
    })
    .unwrap_err();
    assert!(checked);
    assert!(
        matches!(&e, Error::ModelBuild(m) if m.contains("out of range")),
        "{e}"
    );
}

#[test]
fn unwritten_bytes_are_refused() {
    let meta = tiny_spec().metadata_gguf().unwrap();
    // nothing written
    let e = Model::from_metadata(&meta, cpu(), |_| Ok::<(), String>(())).unwrap_err();
    assert!(
        matches!(&e, Error::ModelBuild(m) if m.contains("were not written")),
        "{e}"
    );
    // all but the last byte, in two overlapping writes
    let e = Model::from_metadata(&meta, cpu(), |t| {
        let n = t.n_bytes();
        t.write(0, &vec![0; n / 2 + 1])?;
        t.write(n / 2, &vec![0; n - n / 2 - 1])
    })
    .unwrap_err();
    let Error::ModelBuild(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("were not written"), "{m}");
}

#[test]
fn metadata_the_checks_refuse_is_refused_before_llama_cpp_sees_it() {
    let mut meta = tiny_spec().metadata_gguf().unwrap();
    meta.set("llama.block_count", &MetaValue::U32(0)).unwrap();
    let calls = Cell::new(0);
    let e = Model::from_metadata(&meta, cpu(), |_| {
        calls.set(calls.get() + 1);
        Ok::<(), String>(())
    })
    .unwrap_err();
    assert_eq!(calls.get(), 0);
    assert!(
        matches!(&e, Error::ModelBuild(m) if m.contains("block_count")),
        "{e}"
    );
    // an override the checks refuse, on valid metadata
    let meta = tiny_spec().metadata_gguf().unwrap();
    let params = cpu()
        .kv_override("llama.block_count", KvOverride::Int(0))
        .unwrap();
    let e = Model::from_metadata(&meta, params, |_| Ok::<(), String>(())).unwrap_err();
    assert!(
        matches!(&e, Error::ModelBuild(m) if m.contains("block_count")),
        "{e}"
    );
}

/// Builds `opts`'s model in memory with metadata key `key` set to 0: `Err`, or a model that
/// decodes. Never an abort: llama.cpp sizes the tensors of a model built in memory from
/// these numbers alone (there is no file tensor to compare with), and asserted that each
/// size is at least 1 (patch 0032 makes that a load error).
fn zeroed(opts: &SynthOptions, key: &str) -> Result<Model, Error> {
    let spec = ModelSpec::from_options(opts).unwrap();
    let mut meta = spec.metadata_gguf().unwrap();
    meta.set(key, &MetaValue::U32(0)).unwrap();
    build_from(&meta, &mut InMemoryFill::new(&spec).unwrap())
}

#[test]
fn a_zero_tensor_dimension_in_the_metadata_is_an_error() {
    let llama = SynthOptions::new(Preset::LlamaTiny);
    let mut next = SynthOptions::new(Preset::Qwen3NextTiny);
    next.fused_experts = true;
    for (opts, key, tensor) in [
        (&llama, "llama.embedding_length", "token_embd.weight"),
        (&llama, "llama.feed_forward_length", "blk.0.ffn_gate.weight"),
        (&llama, "llama.attention.head_count", "blk.0.attn_q.weight"),
        (
            &llama,
            "llama.attention.head_count_kv",
            "blk.0.attn_k.weight",
        ),
        (
            &next,
            "qwen3next.attention.head_count",
            "blk.3.attn_q.weight",
        ),
        (
            &next,
            "qwen3next.ssm.conv_kernel",
            "blk.0.ssm_conv1d.weight",
        ),
    ] {
        let e = zeroed(opts, key)
            .err()
            .unwrap_or_else(|| panic!("{key} = 0 built"));
        let Error::ModelBuild(m) = &e else {
            panic!("{key}: {e:?}")
        };
        assert!(
            m.contains(&format!("tensor '{tensor}' would have dimension")),
            "{key}: {m}"
        );
    }
}

#[test]
fn every_count_in_the_metadata_set_to_zero_is_an_error_or_a_working_model() {
    for preset in Preset::TINY {
        let mut opts = SynthOptions::new(preset);
        opts.fused_experts = matches!(preset.arch(), "qwen3next" | "qwen35moe");
        let spec = ModelSpec::from_options(&opts).unwrap();
        let keys: Vec<String> = spec
            .metadata
            .entries()
            .iter()
            .filter(|(_, v)| matches!(v, MetaValue::U32(_)))
            .map(|(k, _)| k.clone())
            .collect();
        assert!(keys.len() >= 10, "{preset}: {keys:?}");
        for key in &keys {
            let Ok(model) = zeroed(&opts, key) else {
                continue;
            };
            let prompt = model.vocab().tokenize("It is important", true, false);
            assert!(
                greedy(&model, &prompt.unwrap_or_default(), 2).len() >= 2,
                "{preset}: {key}"
            );
        }
    }
}

#[test]
fn metadata_llama_cpp_refuses_is_an_error() {
    let mut meta = tiny_spec().metadata_gguf().unwrap();
    meta.set(
        "general.architecture",
        &MetaValue::Str("no-such-arch".into()),
    )
    .unwrap();
    let e = Model::from_metadata(&meta, cpu(), |_| Ok::<(), String>(())).unwrap_err();
    assert!(matches!(e, Error::ModelBuild(_)), "{e:?}");
}

#[test]
fn a_learned_position_table_bounds_positions_even_when_the_metadata_omits_it() {
    use llamacpp::{Batch, Context, ContextParams};
    let spec = ModelSpec::from_options(&SynthOptions::new(Preset::Gpt2Tiny)).unwrap();
    // The tensor infos only give types: without the (F32) table's, llama.cpp still creates it.
    let mut meta = llamacpp::llamacpp_ggml::gguf::Gguf::empty().unwrap();
    meta.set_all(&spec.metadata).unwrap();
    let infos = spec.tensor_infos();
    let infos: Vec<_> = infos
        .into_iter()
        .filter(|t| t.name != "position_embd.weight")
        .collect();
    meta.add_tensors(&infos).unwrap();
    let mut values = InMemoryFill::new(&spec).unwrap();
    let model = Model::from_metadata(&meta, cpu(), |t| {
        let (name, ty, n) = (t.name().to_owned(), t.tensor_type(), t.n_bytes());
        if name == "position_embd.weight" {
            // F32 now, not the spec's type: zeros instead of synth's values
            assert_eq!(ty, Some(llamacpp_synth::TensorType::F32));
            return t.write(0, &vec![0; n]).map_err(|e| e.to_string());
        }
        values
            .fill(&name, ty, n, |offset, bytes| t.write(offset, bytes))
            .map_err(|e| e.to_string())
    })
    .unwrap();
    let rows = model.n_ctx_train();
    let t = model.vocab().token(10).unwrap();
    let mut ctx = Context::new(
        &model,
        ContextParams::default()
            .n_ctx(512)
            .n_batch(512)
            .n_ubatch(512)
            .n_threads(1),
    )
    .unwrap();
    let past = ctx.decode(&mut Batch::from_tokens(&[t], rows, 0).unwrap());
    assert!(
        matches!(
            past,
            Err(Error::OutOfRange {
                what: "position",
                ..
            })
        ),
        "{past:?}"
    );
}
