//! The BPE vocabulary `llamacpp-synth` writes works in llama.cpp: text round-trips, merges
//! apply, special tokens and the ChatML template behave like a converted Qwen model's.

mod common;

use common::synth::load_cpu;
use llamacpp::Model;
use llamacpp::chat::{ChatMessage, apply_template};
use llamacpp_synth::vocab::{ENDOFTEXT, IM_END, IM_START};
use llamacpp_synth::{Preset, tiny_model_path};

fn qwen() -> Model {
    load_cpu(&tiny_model_path(Preset::Qwen3NextTiny)).unwrap()
}

#[test]
fn ascii_round_trips_with_merges() {
    let m = qwen();
    let v = m.vocab();
    let text = "The people in the town open their shops in the morning.\nfn main() { return 42; }";
    let tokens = v.tokenize(text, false, false).unwrap();
    assert_eq!(v.detokenize(&tokens, false, false).unwrap(), text);
    // merges apply: fewer tokens than bytes
    assert!(
        tokens.len() * 2 < text.len(),
        "{} tokens for {} bytes",
        tokens.len(),
        text.len()
    );
}

#[test]
fn multibyte_utf8_round_trips() {
    let m = qwen();
    let v = m.vocab();
    for text in [
        "Le café est très bon",
        "日本語のテキスト",
        "Привет, мир!",
        "emoji 🙂🚀 and 中文",
        "\u{10FFFF}\t\r\n",
    ] {
        let tokens = v.tokenize(text, false, false).unwrap();
        assert!(!tokens.is_empty());
        assert_eq!(
            v.detokenize(&tokens, false, false).unwrap(),
            text,
            "{tokens:?}"
        );
    }
}

#[test]
fn special_tokens_parse_and_print() {
    let m = qwen();
    let v = m.vocab();
    let (bos, eos, eot) = (v.bos().unwrap(), v.eos().unwrap(), v.eot());
    assert_eq!(v.piece_bytes(bos, true).unwrap(), ENDOFTEXT.as_bytes());
    assert_eq!(v.piece_bytes(eos, true).unwrap(), IM_END.as_bytes());
    assert_eq!(eot, Some(eos));
    let t = v
        .tokenize(&format!("{IM_START}user\nhi{IM_END}"), false, true)
        .unwrap();
    assert_eq!(v.piece_bytes(t[0], true).unwrap(), IM_START.as_bytes());
    assert_eq!(*t.last().unwrap(), eos);
    // without parse_special the markers are plain text
    let plain = v.tokenize(IM_START, false, false).unwrap();
    assert!(plain.len() > 1);
    // control tokens print as nothing unless asked
    assert!(v.piece_bytes(eos, false).unwrap().is_empty());
    // Qwen adds no BOS; the llama preset does
    assert_eq!(
        v.tokenize("hi", true, false).unwrap(),
        v.tokenize("hi", false, false).unwrap()
    );
    let l = load_cpu(&tiny_model_path(Preset::LlamaTiny)).unwrap();
    let lv = l.vocab();
    assert_eq!(Some(lv.tokenize("hi", true, false).unwrap()[0]), lv.bos());
}

#[test]
fn user_defined_tokens_are_single_tokens() {
    let m = qwen();
    let v = m.vocab();
    let t = v.tokenize("<think>ok</think>", false, false).unwrap();
    assert_eq!(v.piece_bytes(t[0], false).unwrap(), b"<think>");
    assert_eq!(v.detokenize(&t, false, false).unwrap(), "<think>ok</think>");
}

#[test]
fn chat_template_is_chatml() {
    let m = qwen();
    let tmpl = m.chat_template(None).expect("model has a chat template");
    assert!(tmpl.contains(IM_START));
    let out = apply_template(&tmpl, &[ChatMessage::new("user", "Hello!")], true)
        .expect("template recognised");
    assert_eq!(
        out,
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
    );
}
