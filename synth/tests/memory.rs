//! `load_in_memory` builds the same model as the file, without the file.

mod common;

use common::Model;
use llamacpp_synth::{LinearLayout, ModelSpec, Preset, SynthOptions, cached_model, load_in_memory};

fn in_memory(opts: &SynthOptions) -> llamacpp_synth::Result<Model> {
    common::init();
    let spec = ModelSpec::from_options(opts)?;
    // SAFETY: llama_model_default_params has no preconditions.
    let mut params = unsafe { llamacpp_sys::llama_model_default_params() };
    params.n_gpu_layers = 0;
    Ok(Model::from_raw(load_in_memory(&spec, params)?.into_raw()))
}

#[test]
fn memory_models_decode_like_their_files() {
    for preset in Preset::TINY {
        // in memory, llama.cpp creates fused expert tensors for the hybrid archs
        let mut opts = SynthOptions::new(preset);
        opts.fused_experts = matches!(preset.arch(), "qwen3next" | "qwen35moe");
        let file = Model::load(&cached_model(&opts).unwrap()).unwrap();
        let mem = in_memory(&opts).unwrap();
        assert_eq!(
            mem.meta("general.architecture"),
            file.meta("general.architecture")
        );
        assert_eq!(
            (mem.n_layer(), mem.n_embd(), mem.n_vocab()),
            (file.n_layer(), file.n_embd(), file.n_vocab())
        );
        assert_eq!(mem.hparams(), file.hparams());
        let prompt = file.tokenize("It is important to test the things you build.", true, false);
        let (a, b) = (mem.greedy(&prompt, 8), file.greedy(&prompt, 8));
        assert_eq!(a, b, "{preset}");
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
