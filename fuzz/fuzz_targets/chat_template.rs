//! Arbitrary chat templates, as jinja and as llama.cpp's built-in formats, with
//! arbitrary messages; rendering must end (fuel) and return `Ok` or `Err`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llamacpp::chat::{ChatMessage, ChatRequest, ChatTemplate, apply_template};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    template: &'a str,
    messages: Vec<(&'a str, &'a str)>,
    add_assistant: bool,
}

fuzz_target!(|input: Input<'_>| {
    llamacpp_fuzz::quiet();
    let messages: Vec<_> = input
        .messages
        .iter()
        .take(16)
        .map(|(r, c)| ChatMessage::new(*r, *c))
        .collect();
    let _ = apply_template(input.template, &messages, input.add_assistant);
    let req = ChatRequest::new(messages).add_generation_prompt(input.add_assistant);
    if let Ok(t) = ChatTemplate::jinja(input.template, "<s>", "</s>") {
        let _ = t.render(&req);
    }
    let _ = ChatTemplate::builtin(input.template).render(&req);
});
