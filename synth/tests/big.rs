//! The full-width Qwen3-Next-80B-A3B preset at 4 layers, Q4_0 (~4 GB): written,
//! loaded and decoded. Ignored by default (disk and time); run with
//! `cargo test --release -p llamacpp-synth --test big -- --ignored`.
//! `LLAMACPP_SYNTH_BIG_MODEL=<path>` reuses an existing file written with the
//! same options instead of writing (and afterwards deleting) a new one.

mod common;

use common::{Model, distinct};
use llamacpp_synth::{FileType, ModelSpec, Preset, SynthOptions, write_gguf};

#[test]
#[ignore = "writes a ~4 GB file"]
fn qwen3next_80b_a3b_four_layers_q4_0() {
    let mut o = SynthOptions::new(Preset::Qwen3Next80bA3b);
    o.layers = Some(4);
    o.ftype = FileType::Q4_0;
    let spec = ModelSpec::from_options(&o).unwrap();
    let (path, owned) = match std::env::var_os("LLAMACPP_SYNTH_BIG_MODEL") {
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
        let model = Model::load(&path).expect("the model loads");
        assert_eq!(
            model.meta("general.architecture").as_deref(),
            Some("qwen3next")
        );
        assert_eq!(
            (model.n_layer(), model.n_embd(), model.n_vocab()),
            (4, 2048, 151_936)
        );
        assert_eq!(model.n_params(), spec.n_params());
        assert_eq!(model.size(), spec.data_bytes());
        let prompt = model.tokenize(
            "The weather is good, so we walk to the river.",
            false,
            false,
        );
        let out = model.greedy(&prompt, 16);
        eprintln!(
            "greedy continuation: {out:?} = {:?}",
            model.detokenize(&out, false)
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
