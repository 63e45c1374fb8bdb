//! The full-width Qwen3-Next-80B-A3B preset of `llamacpp-synth` at 4 layers, Q4_0 (~4 GB):
//! written, loaded and decoded. Ignored by default (disk and time); run with
//! `cargo test --release -p llamacpp --test synth_big -- --ignored`.
//! `LLAMACPP_SYNTH_BIG_MODEL=<path>` reuses an existing file written with the
//! same options instead of writing (and afterwards deleting) a new one.

mod common;

use common::synth::{distinct, greedy, load_cpu};
use llamacpp_synth::{FileType, ModelSpec, Preset, SynthOptions, write_gguf};

#[test]
#[ignore = "writes a ~4 GB file"]
fn qwen3next_80b_a3b_four_layers_q4_0() {
    let mut o = SynthOptions::new(Preset::Qwen3Next80bA3b);
    o.layers = Some(4);
    o.ftype = FileType::Q4_0;
    let spec = ModelSpec::from_options(&o).unwrap();
    let (path, owned): (std::path::PathBuf, bool) =
        match std::env::var_os("LLAMACPP_SYNTH_BIG_MODEL") {
            Some(p) => (p.into(), false),
            None => {
                let p = std::env::temp_dir()
                    .join(format!("llamacpp-synth-big-{}.gguf", std::process::id()));
                let report = write_gguf(&spec, &p, false).unwrap();
                eprintln!("{report}");
                (p, true)
            }
        };
    let result = std::panic::catch_unwind(|| {
        let model = load_cpu(&path).unwrap_or_else(|e| panic!("the model loads: {e}"));
        assert_eq!(
            model.meta("general.architecture").as_deref(),
            Some("qwen3next")
        );
        assert_eq!(
            (model.n_layer(), model.n_embd(), model.vocab().n_tokens()),
            (4, 2048, 151_936)
        );
        assert_eq!(model.n_params(), spec.n_params());
        assert_eq!(model.size(), spec.data_bytes());
        let vocab = model.vocab();
        let prompt = vocab
            .tokenize(
                "The weather is good, so we walk to the river.",
                false,
                false,
            )
            .unwrap();
        let out = greedy(&model, &prompt, 16);
        eprintln!(
            "greedy continuation: {out:?} = {:?}",
            vocab.detokenize(&out, false, false).unwrap()
        );
        assert!(distinct(&out) >= 2, "{out:?}");
    });
    if owned {
        let _ = std::fs::remove_file(&path);
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
