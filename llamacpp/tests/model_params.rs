//! ModelParams: metadata overrides that llama.cpp honours, device lists and
//! tensor splits, and every input C cannot take is an error.

mod common;

use llamacpp::{
    Context, ContextParams, Error, KvOverride, LoadMode, Model, ModelParams, SplitMode,
};

fn load(p: ModelParams) -> Model {
    Model::load(common::dense_path(), p).unwrap()
}

#[test]
fn kv_overrides_change_what_the_model_reports_and_computes() {
    let base = common::dense();
    assert_eq!(base.n_ctx_train(), 4096);
    let m = load(
        ModelParams::default()
            .kv_override("llama.context_length", KvOverride::Int(1234))
            .unwrap(),
    );
    assert_eq!(m.n_ctx_train(), 1234);

    // The last value for a key wins.
    let m = load(
        ModelParams::default()
            .kv_override("llama.context_length", KvOverride::Int(100))
            .unwrap()
            .kv_override("llama.context_length", KvOverride::Int(2000))
            .unwrap(),
    );
    assert_eq!(m.n_ctx_train(), 2000);

    // A key read with another type keeps the file's value (llama.cpp warns).
    let m = load(
        ModelParams::default()
            .kv_override("llama.context_length", KvOverride::Str("x".into()))
            .unwrap(),
    );
    assert_eq!(m.n_ctx_train(), 4096);

    // A float the graph uses: the RMS norm epsilon changes the logits.
    let eps = load(
        ModelParams::default()
            .kv_override(
                "llama.attention.layer_norm_rms_epsilon",
                KvOverride::Float(0.5),
            )
            .unwrap(),
    );
    let params = || ContextParams::default().n_ctx(64).n_threads(2);
    let mut c0 = Context::new(&base, params()).unwrap();
    let mut c1 = Context::new(&eps, params()).unwrap();
    let (l0, l1) = (
        common::prompt_logits(&mut c0),
        common::prompt_logits(&mut c1),
    );
    let e = llamacpp_ggml::nmse(&l1, &l0);
    assert!(
        e > 1e-4,
        "rms eps override did not change the logits: nmse {e}"
    );

    // A shape key that contradicts the tensors fails the load cleanly.
    let bad = Model::load(
        common::dense_path(),
        ModelParams::default()
            .kv_override("llama.embedding_length", KvOverride::Int(128))
            .unwrap(),
    );
    assert!(matches!(bad, Err(Error::ModelLoad { .. })));
}

#[test]
fn overrides_that_c_cannot_hold_are_errors() {
    let p = || ModelParams::default();
    let long = "k".repeat(128);
    assert!(matches!(
        p().kv_override(&long, KvOverride::Int(1)),
        Err(Error::OutOfRange { .. })
    ));
    assert!(p().kv_override(&long[..127], KvOverride::Int(1)).is_ok());
    assert!(matches!(
        p().kv_override("a\0b", KvOverride::Int(1)),
        Err(Error::Nul(_))
    ));
    assert!(p().kv_override("", KvOverride::Bool(true)).is_err());
    assert!(
        p().kv_override("general.name", KvOverride::Str("s".repeat(128)))
            .is_err()
    );
    assert!(
        p().kv_override("general.name", KvOverride::Str("n\0".into()))
            .is_err()
    );
    // A string of exactly 127 bytes reaches llama.cpp intact: as the pre-tokenizer
    // name it is unknown, and the load error quotes it in full.
    let pre = "t".repeat(127);
    let r = Model::load(
        common::dense_path(),
        p().kv_override("tokenizer.ggml.pre", KvOverride::Str(pre.clone()))
            .unwrap(),
    );
    match r {
        Err(Error::ModelLoad { reason, .. }) => {
            assert!(reason.contains(&format!("'{pre}'")), "{reason}")
        }
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn devices_and_tensor_split_are_checked() {
    let p = || ModelParams::default();
    let max = llamacpp::max_devices();
    assert!(max >= 1);
    assert!(p().tensor_split(&vec![1.0; max]).is_ok());
    assert!(matches!(
        p().tensor_split(&vec![1.0; max + 1]),
        Err(Error::OutOfRange { .. })
    ));
    assert!(p().tensor_split(&[1.0, -0.5]).is_err());
    assert!(p().tensor_split(&[f32::NAN]).is_err());
    assert!(p().tensor_split(&[f32::INFINITY]).is_err());

    assert!(matches!(
        p().devices(&["NoSuchDevice"]),
        Err(Error::Device(_))
    ));
    let names: Vec<String> = llamacpp::backend::devices()
        .into_iter()
        .map(|d| d.name)
        .collect();
    let first = names[0].as_str();
    assert!(matches!(
        p().devices(&[first, first]),
        Err(Error::Device(_))
    ));
    let too_many = vec![first; max + 1];
    assert!(p().devices(&too_many).is_err());

    // No offload device at all: the model runs on the CPU and computes the same logits.
    let cpu = load(
        p().devices(&[])
            .unwrap()
            .split_mode(SplitMode::None)
            .tensor_split(&[1.0])
            .unwrap(),
    );
    let base = common::dense();
    let params = || ContextParams::default().n_ctx(64).n_threads(2);
    let mut c0 = Context::new(&base, params()).unwrap();
    let mut c1 = Context::new(&cpu, params()).unwrap();
    let (l0, l1) = (
        common::prompt_logits(&mut c0),
        common::prompt_logits(&mut c1),
    );
    assert!(llamacpp_ggml::nmse(&l1, &l0) < 1e-6);

    // Every GPU that is present, by name, in a layer split.
    let gpus: Vec<&str> = llamacpp::backend::devices()
        .iter()
        .filter(|d| d.kind == llamacpp::backend::DeviceKind::Gpu)
        .map(|d| names.iter().find(|n| **n == d.name).unwrap().as_str())
        .collect();
    if !gpus.is_empty() {
        let split = vec![1.0; gpus.len()];
        let g = load(
            p().devices(&gpus)
                .unwrap()
                .split_mode(SplitMode::Layer)
                .tensor_split(&split)
                .unwrap()
                .n_gpu_layers(-1),
        );
        let mut c2 = Context::new(&g, params()).unwrap();
        let l2 = common::prompt_logits(&mut c2);
        let e = llamacpp_ggml::nmse(&l2, &l0);
        assert!(e < 1e-3, "GPU logits differ: nmse {e}");
    }
}

#[test]
fn load_modes_load_the_same_model() {
    let base = common::dense();
    let params = || ContextParams::default().n_ctx(64).n_threads(2);
    let mut c0 = Context::new(&base, params()).unwrap();
    let l0 = common::prompt_logits(&mut c0);
    for mode in [
        LoadMode::Read,
        LoadMode::Mmap,
        LoadMode::Auto,
        LoadMode::DirectIo,
    ] {
        let m = load(ModelParams::default().load_mode(mode).no_host(false));
        let mut c = Context::new(&m, params()).unwrap();
        assert_eq!(common::prompt_logits(&mut c), l0, "{mode:?}");
    }
}

#[test]
fn counts_llama_cpp_asserts_on_are_load_errors() {
    // Overrides: llama.cpp GGML_ASSERTs these ranges after reading them.
    for (key, v) in [("llama.block_count", 0), ("llama.block_count", 513)] {
        let r = Model::load(
            common::dense_path(),
            ModelParams::default()
                .kv_override(key, KvOverride::Int(v))
                .unwrap(),
        );
        assert!(matches!(r, Err(Error::ModelLoad { .. })), "{key} = {v}");
    }
    let moe = llamacpp_synth::tiny_model_path(llamacpp_synth::Preset::Qwen3MoeTiny);
    let base = Model::load(&moe, ModelParams::default()).unwrap();
    let n_expert: i64 = base.meta("qwen3moe.expert_count").unwrap().parse().unwrap();
    let used: i64 = base
        .meta("qwen3moe.expert_used_count")
        .unwrap()
        .parse()
        .unwrap();
    for v in [0, n_expert + 1, -1] {
        let r = Model::load(
            &moe,
            ModelParams::default()
                .kv_override("qwen3moe.expert_used_count", KvOverride::Int(v))
                .unwrap(),
        );
        assert!(
            matches!(r, Err(Error::ModelLoad { .. })),
            "expert_used_count = {v}"
        );
    }
    // A valid change of the routed expert count loads and computes something else.
    assert!(used > 1);
    let fewer = Model::load(
        &moe,
        ModelParams::default()
            .kv_override("qwen3moe.expert_used_count", KvOverride::Int(1))
            .unwrap(),
    )
    .unwrap();
    let params = || ContextParams::default().n_ctx(64).n_threads(2);
    let mut c0 = Context::new(&base, params()).unwrap();
    let mut c1 = Context::new(&fewer, params()).unwrap();
    let e = llamacpp_ggml::nmse(
        &common::prompt_logits(&mut c1),
        &common::prompt_logits(&mut c0),
    );
    assert!(
        e > 1e-4,
        "expert_used_count override had no effect: nmse {e}"
    );

    // The same values in a file (not an override) are load errors too.
    let dir = tempfile::tempdir().unwrap();
    let mut spec = common::dense_spec();
    spec.metadata
        .set("llama.block_count", llamacpp_synth::MetaValue::U32(0));
    let bad = dir.path().join("zero-layers.gguf");
    llamacpp_synth::write_gguf(&spec, &bad, false).unwrap();
    assert!(matches!(
        Model::load(&bad, ModelParams::default()),
        Err(Error::ModelLoad { .. })
    ));
}

#[test]
fn tensor_buffer_overrides_keep_results_and_reject_bad_input() {
    let moe_path = llamacpp_synth::tiny_model_path(llamacpp_synth::Preset::Qwen3MoeTiny);
    let base = Model::load(&moe_path, ModelParams::default()).unwrap();
    let params = || ContextParams::default().n_ctx(64).n_threads(2);
    let mut c0 = Context::new(&base, params()).unwrap();
    let l0 = common::prompt_logits(&mut c0);
    let cpu_name = llamacpp::backend::devices()
        .into_iter()
        .find(|d| d.kind == llamacpp::backend::DeviceKind::Cpu)
        .unwrap()
        .name;
    // Experts to host memory, attention to the CPU device by name: same numbers.
    let m = Model::load(
        &moe_path,
        ModelParams::default()
            .tensor_buffer_override("ffn_(up|down|gate)_exps", None)
            .unwrap()
            .tensor_buffer_override(r"blk\.\d+\.attn_", Some(&cpu_name))
            .unwrap(),
    )
    .unwrap();
    let mut c1 = Context::new(&m, params()).unwrap();
    assert!(llamacpp_ggml::nmse(&common::prompt_logits(&mut c1), &l0) < 1e-6);

    // An invalid regular expression is a load error (std::regex throws inside the load).
    let bad = Model::load(
        &moe_path,
        ModelParams::default()
            .tensor_buffer_override("ffn_(up", None)
            .unwrap(),
    );
    assert!(matches!(bad, Err(Error::ModelLoad { .. })), "{bad:?}");
    assert!(matches!(
        ModelParams::default().tensor_buffer_override("a\0b", None),
        Err(Error::Nul(_))
    ));
    assert!(matches!(
        ModelParams::default().tensor_buffer_override("x", Some("NoSuchGPU")),
        Err(Error::Device(_))
    ));
}

#[test]
fn hybrid_models_without_an_attention_layer_are_load_errors() {
    // qwen3next places a full-attention layer every `full_attention_interval` layers: with
    // an interval of 0 the loader divides by zero, and with more than block_count there is no
    // attention layer, whose empty KV cache aborts context creation in llama.cpp.
    let path = common::qwen3next_path();
    let base = Model::load(&path, ModelParams::default()).unwrap();
    let n_layer = i64::from(base.n_layer());
    Context::new(&base, ContextParams::default().n_ctx(64)).unwrap();
    for v in [0, n_layer + 1] {
        let r = Model::load(
            &path,
            ModelParams::default()
                .kv_override("qwen3next.full_attention_interval", KvOverride::Int(v))
                .unwrap(),
        );
        assert!(
            matches!(r, Err(Error::ModelLoad { .. })),
            "full_attention_interval = {v}"
        );
    }
}
