//! Writes the seed corpora of the fuzz targets into `corpus/<target>/`:
//! the GGUF headers (metadata and tensor infos, no data) of every synthetic
//! architecture and of their named semantic corruptions for `gguf_bytes`,
//! and a few valid grammars, schemas and templates for the text targets.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seed` (what `.ci/fuzz` runs).

use std::fs;
use std::path::{Path, PathBuf};

use llamacpp_fuzz::edits::{self, Edit};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The bytes of a GGUF file up to its data section.
fn header(spec: &llamacpp_synth::ModelSpec, scratch: &Path) -> Result<Vec<u8>> {
    llamacpp_synth::write_gguf(spec, scratch, false)?;
    let layout = llamacpp_synth::read_layout(scratch)?;
    let mut bytes = fs::read(scratch)?;
    bytes.truncate(usize::try_from(layout.data_offset)?);
    fs::remove_file(scratch)?;
    Ok(bytes)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn main() -> Result<()> {
    llamacpp_fuzz::quiet();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let scratch = llamacpp_fuzz::scratch("seed.gguf");
    let bytes_dir = root.join("gguf_bytes");
    let mut n = 0;
    for preset in llamacpp_fuzz::PRESETS {
        let base = llamacpp_fuzz::spec(preset);
        write(&bytes_dir, &format!("{preset}"), &header(&base, &scratch)?)?;
        n += 1;
        for (name, list) in edits::named() {
            let mut spec = base.clone();
            list.into_iter().for_each(|e: Edit| e.apply(&mut spec));
            // A corruption the writer itself refuses is not a seed.
            if let Ok(h) = header(&spec, &scratch) {
                write(&bytes_dir, &format!("{preset}-{name}"), &h)?;
                n += 1;
            }
        }
    }
    let text_seeds: [(&str, &[&str]); 3] = [
        (
            "tokenize",
            &[
                "Hello world",
                "<|im_start|>user\nhi<|im_end|>",
                "\u{0}\u{FFFD}\u{1F600}",
            ],
        ),
        (
            "grammar",
            &[
                "root ::= \"yes\" | \"no\"",
                "root ::= [a-z]{2,5} (\" \" [0-9]+)*",
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}",
            ],
        ),
        (
            "chat_template",
            &[
                "chatml",
                "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
                "{{ bos_token }}{% if add_generation_prompt %}A:{% endif %}",
            ],
        ),
    ];
    for (target, seeds) in text_seeds {
        for (i, s) in seeds.iter().enumerate() {
            write(&root.join(target), &format!("seed-{i}"), s.as_bytes())?;
            n += 1;
        }
    }
    println!("{n} seeds in {}", root.display());
    Ok(())
}
