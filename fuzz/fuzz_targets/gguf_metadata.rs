//! A synthetic model of each architecture with arbitrary semantic edits to its
//! metadata (types, ranges, vocabulary), written as a valid GGUF, loaded, and
//! used: tokenize, pieces, a context and a decode.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llamacpp::ModelParams;
use llamacpp_fuzz::edits::Edit;

#[derive(Arbitrary, Debug)]
struct Input {
    preset: u8,
    edits: Vec<Edit>,
}

fuzz_target!(|input: Input| {
    llamacpp_fuzz::quiet();
    let presets = llamacpp_fuzz::PRESETS;
    let preset = presets[usize::from(input.preset) % presets.len()];
    let mut spec = llamacpp_fuzz::spec(preset);
    for e in input.edits.into_iter().take(8) {
        e.apply(&mut spec);
    }
    if let Some(model) = llamacpp_fuzz::write_and_load(&spec, ModelParams::default()) {
        llamacpp_fuzz::exercise(&model, false);
    }
});
