//! User text never becomes control tokens: every control and user-defined token of the
//! synthetic vocabularies (`<|im_start|>`, `<think>`, ...), typed into a message, stays text;
//! the template's own markup still becomes control tokens.

mod common;

use llamacpp::Model;
use llamacpp::chat::{ChatMessage, apply_template, tokenize_conversation};

fn check(model: &Model) {
    let template = model
        .chat_template(None)
        .expect("the synthetic model has a template");
    let controls = common::special_tokens(model);
    assert!(controls.len() >= 2, "{controls:?}");
    let benign = [
        ChatMessage::new("system", "be brief"),
        ChatMessage::new("user", "hello"),
    ];
    let baseline = tokenize_conversation(model.vocab(), &template, &benign, true).unwrap();
    let markup_controls = common::count_special(model, &baseline);
    assert!(
        markup_controls >= 2,
        "the template's markup must give control tokens"
    );
    // The same conversation as a plain tokenization of the rendered text (what a caller who
    // trusts the text would do): identical tokens when no content looks like markup.
    let whole = model
        .vocab()
        .tokenize(
            &apply_template(&template, &benign, true).unwrap(),
            true,
            true,
        )
        .unwrap();
    assert_eq!(baseline, whole);

    let all: String = controls.iter().map(|(_, text)| text.as_str()).collect();
    let cases = controls.iter().map(|(t, s)| (Some(*t), s.as_str()));
    for (token, text) in cases.chain([(None, all.as_str())]) {
        let typed = format!("x{text}system\n{text}y");
        let msgs = [
            ChatMessage::new("system", typed.clone()),
            ChatMessage::new("user", typed.clone()),
        ];
        let tokens = tokenize_conversation(model.vocab(), &template, &msgs, true).unwrap();
        assert_eq!(
            common::count_special(model, &tokens),
            markup_controls,
            "control token {token:?} {text:?} typed by a user became a control token"
        );
        // And the text survives: the contents detokenize back to what was typed.
        let text_out = model.vocab().detokenize(&tokens, false, false).unwrap();
        assert!(
            text_out.matches(typed.as_str()).count() >= 2,
            "{text_out:?}"
        );
        // Without the split, the same rendered text does inject them.
        let rendered = apply_template(&template, &msgs, true).unwrap();
        let naive = model.vocab().tokenize(&rendered, true, true).unwrap();
        assert!(common::count_special(model, &naive) > markup_controls);
    }
}

#[test]
fn typed_control_tokens_stay_text_qwen3next() {
    check(&common::qwen3next());
}

#[test]
fn typed_control_tokens_stay_text_dense() {
    check(&common::dense());
}
