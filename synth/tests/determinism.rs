//! Same options and seed give byte-identical files; another seed does not.

use std::path::PathBuf;

use llamacpp_synth::{FileType, ModelSpec, Preset, SynthOptions, write_gguf};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("llamacpp-synth-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(opts: &SynthOptions, name: &str) -> Vec<u8> {
    let path = scratch(name);
    let report = write_gguf(&ModelSpec::from_options(opts).unwrap(), &path, false).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(report.bytes, bytes.len() as u64);
    std::fs::remove_file(&path).unwrap();
    bytes
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for ftype in [FileType::Q4_K, FileType::BF16] {
        let mut o = SynthOptions::new(Preset::Qwen3NextTiny);
        o.ftype = ftype;
        let a = write(&o, "a.gguf");
        let b = write(&o, "b.gguf");
        assert!(a == b, "{ftype}: two writes differ");
        o.seed += 1;
        let c = write(&o, "c.gguf");
        assert_eq!(a.len(), c.len(), "the seed does not change the layout");
        assert!(a != c, "{ftype}: another seed gives the same bytes");
    }
}

#[test]
fn a_tensor_does_not_depend_on_the_others() {
    // More layers add tensors before and after; layer 0's bytes stay the same.
    let small = SynthOptions::new(Preset::LlamaTiny);
    let mut big = small.clone();
    big.layers = Some(3);
    let (sa, sb) = (
        ModelSpec::from_options(&small).unwrap(),
        ModelSpec::from_options(&big).unwrap(),
    );
    let (a, b) = (write(&small, "small.gguf"), write(&big, "big.gguf"));
    let la = llama_synth_layout(&sa, &a, "small2.gguf");
    let lb = llama_synth_layout(&sb, &b, "big2.gguf");
    let name = "blk.0.ffn_down.weight";
    let ta = la.iter().find(|t| t.0 == name).unwrap();
    let tb = lb.iter().find(|t| t.0 == name).unwrap();
    assert_eq!(&a[ta.1..ta.1 + ta.2], &b[tb.1..tb.1 + tb.2]);
}

/// (name, absolute offset, size) of each tensor, as ggml reads the file back.
fn llama_synth_layout(spec: &ModelSpec, bytes: &[u8], name: &str) -> Vec<(String, usize, usize)> {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    let layout = llamacpp_synth::read_layout(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(layout.tensors.len(), spec.tensors.len());
    layout
        .tensors
        .into_iter()
        .map(|(n, _, off, size)| (n, (layout.data_offset + off) as usize, size as usize))
        .collect()
}
