//! The BPE vocabulary works in llama.cpp: text round-trips, merges apply,
//! special tokens and the ChatML template behave like a converted Qwen model's.

mod common;

use std::ffi::{CString, c_char};

use common::Model;
use llamacpp_synth::vocab::{ENDOFTEXT, IM_END, IM_START};
use llamacpp_synth::{Preset, tiny_model_path};

fn qwen() -> Model {
    Model::load(&tiny_model_path(Preset::Qwen3NextTiny)).unwrap()
}

#[test]
fn ascii_round_trips_with_merges() {
    let m = qwen();
    let text = "The people in the town open their shops in the morning.\nfn main() { return 42; }";
    let tokens = m.tokenize(text, false, false);
    assert_eq!(m.detokenize(&tokens, false), text);
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
    for text in [
        "Le café est très bon",
        "日本語のテキスト",
        "Привет, мир!",
        "emoji 🙂🚀 and 中文",
        "\u{10FFFF}\t\r\n",
    ] {
        let tokens = m.tokenize(text, false, false);
        assert!(!tokens.is_empty());
        assert_eq!(m.detokenize(&tokens, false), text, "{tokens:?}");
    }
}

#[test]
fn special_tokens_parse_and_print() {
    let m = qwen();
    let (bos, eos, eot) = m.special_ids();
    assert_eq!(m.piece(bos, true), ENDOFTEXT.as_bytes());
    assert_eq!(m.piece(eos, true), IM_END.as_bytes());
    assert_eq!(eot, eos);
    let t = m.tokenize(&format!("{IM_START}user\nhi{IM_END}"), false, true);
    assert_eq!(m.piece(t[0], true), IM_START.as_bytes());
    assert_eq!(*t.last().unwrap(), eos);
    // without parse_special the markers are plain text
    let plain = m.tokenize(IM_START, false, false);
    assert!(plain.len() > 1);
    // control tokens print as nothing unless asked
    assert!(m.piece(eos, false).is_empty());
    // Qwen adds no BOS; the llama preset does
    assert_eq!(
        m.tokenize("hi", true, false),
        m.tokenize("hi", false, false)
    );
    let l = Model::load(&tiny_model_path(Preset::LlamaTiny)).unwrap();
    assert_eq!(l.tokenize("hi", true, false)[0], l.special_ids().0);
}

#[test]
fn user_defined_tokens_are_single_tokens() {
    let m = qwen();
    let t = m.tokenize("<think>ok</think>", false, false);
    assert_eq!(m.piece(t[0], false), b"<think>");
    assert_eq!(m.detokenize(&t, false), "<think>ok</think>");
}

#[test]
fn chat_template_is_chatml() {
    let m = qwen();
    let tmpl = m.chat_template().expect("model has a chat template");
    assert!(tmpl.contains(IM_START));
    let role = CString::new("user").unwrap();
    let content = CString::new("Hello!").unwrap();
    let msg = llamacpp_sys::llama_chat_message {
        role: role.as_ptr(),
        content: content.as_ptr(),
    };
    let tmpl_c = CString::new(tmpl).unwrap();
    let mut buf = vec![0u8; 1024];
    // SAFETY: one valid message whose strings outlive the call; buf has buf.len() bytes.
    let n = unsafe {
        llamacpp_sys::llama_chat_apply_template(
            tmpl_c.as_ptr(),
            &msg,
            1,
            true,
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len() as i32,
        )
    };
    assert!(n > 0, "template not recognised");
    let out = String::from_utf8(buf[..n as usize].to_vec()).unwrap();
    assert_eq!(
        out,
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
    );
}
