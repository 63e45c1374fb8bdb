//! The presets' model files without llama.cpp: the tiny ones are cached and small, and
//! invalid option combinations are refused. Loading and decoding them is tested in
//! `llamacpp/tests/synth_presets.rs`, on the safe API.

use llamacpp_synth::{LinearLayout, ModelSpec, Preset, SynthOptions, Vocab, tiny_model_path};

#[test]
fn tiny_model_path_is_cached() {
    let a = tiny_model_path(Preset::LlamaTiny);
    let modified = std::fs::metadata(&a).unwrap().modified().unwrap();
    let b = tiny_model_path(Preset::LlamaTiny);
    assert_eq!(a, b);
    assert_eq!(std::fs::metadata(&b).unwrap().modified().unwrap(), modified);
}

#[test]
fn tiny_models_are_small() {
    for p in Preset::TINY {
        let len = std::fs::metadata(tiny_model_path(p)).unwrap().len();
        assert!(len < 16 << 20, "{p}: {len} bytes");
    }
}

#[test]
fn invalid_combinations_are_errors() {
    let mut o = SynthOptions::new(Preset::Qwen3MoeTiny);
    o.fused_experts = true;
    assert!(ModelSpec::from_options(&o).is_err());
    let mut o = SynthOptions::new(Preset::Qwen35MoeTiny);
    o.layout = LinearLayout::Legacy;
    assert!(ModelSpec::from_options(&o).is_err());
    let mut o = SynthOptions::new(Preset::LlamaTiny);
    o.layers = Some(0);
    assert!(ModelSpec::from_options(&o).is_err());
    let mut o = SynthOptions::new(Preset::LlamaTiny);
    o.vocab = Vocab::None { size: 0 };
    assert!(ModelSpec::from_options(&o).is_err());
}
