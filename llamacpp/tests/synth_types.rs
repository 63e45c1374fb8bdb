//! Every tensor type `llamacpp-synth` writes loads and decodes, with each tensor of the
//! type the spec gives it.

mod common;

use common::synth::{distinct, greedy, load_cpu};
use llamacpp_synth::{FileType, ModelSpec, Preset, SynthOptions, cached_model, read_layout};

#[test]
fn every_file_type_loads_and_decodes() {
    for ftype in FileType::ALL {
        let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
        o.ftype = ftype;
        let spec = ModelSpec::from_options(&o).unwrap();
        let path = cached_model(&o).unwrap();
        let layout = read_layout(&path).unwrap();
        for t in &spec.tensors {
            assert_eq!(
                layout.tensor_type(&t.name),
                Some(t.ty),
                "{ftype}: {}",
                t.name
            );
        }
        let model = load_cpu(&path).unwrap_or_else(|e| panic!("{ftype} does not load: {e}"));
        assert_eq!(model.size(), spec.data_bytes());
        let prompt = model
            .vocab()
            .tokenize("Numbers are split one digit at a time", false, false)
            .unwrap();
        let out = greedy(&model, &prompt, 8);
        assert!(distinct(&out) >= 2, "{ftype}: {out:?}");
    }
}
