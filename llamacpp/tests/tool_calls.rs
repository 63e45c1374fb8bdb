//! Tool calls: parsing replies, grammar-constrained calls (whole and lazy) on a synthetic model,
//! and a round trip through a real chat template with the call's result.

mod common;

use llamacpp::chat::{
    ChatMessage, ChatRequest, ChatTemplate, Tool, ToolCall, ToolCallFormat, ToolGrammar,
    ToolGrammarOptions, parse_tool_calls, tokenize_chat, tool_call_grammar, tool_call_grammar_with,
};
use llamacpp::{Context, ContextParams, Error, Model, ModelParams, SamplerChain, Token};
use llamacpp_synth::{Preset, SynthOptions};
use serde_json::json;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "get_weather",
            "The weather in a city",
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "pattern": "^[A-Za-z ]{1,12}$"},
                    "unit": {"enum": ["celsius", "fahrenheit"]},
                    "note": {"type": "string", "maxLength": 6}
                },
                "required": ["city", "unit", "note"],
                "additionalProperties": false
            }),
        ),
        Tool::new(
            "add",
            "Adds two integers",
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "b": {"type": "integer"},
                    "exact": {"type": "boolean"}
                },
                "required": ["a", "b", "exact"],
                "additionalProperties": false
            }),
        ),
    ]
}

/// Panics unless `call` names one of `tools` and its arguments have exactly that tool's
/// properties (all required here), each of the schema's type or among its enum.
fn assert_valid(call: &ToolCall, tools: &[Tool]) {
    let tool = tools
        .iter()
        .find(|t| t.name == call.name)
        .unwrap_or_else(|| panic!("unknown tool {:?}", call.name));
    let args = call.arguments.as_object().expect("arguments are an object");
    let props = tool.parameters["properties"].as_object().unwrap();
    assert_eq!(
        args.len(),
        props.len(),
        "keys of {args:?} vs schema {props:?}"
    );
    for (key, schema) in props {
        let v = args
            .get(key)
            .unwrap_or_else(|| panic!("{} lacks {key}", call.name));
        if let Some(options) = schema.get("enum") {
            assert!(options.as_array().unwrap().contains(v), "{key} = {v}");
            continue;
        }
        match schema["type"].as_str().unwrap() {
            "string" => {
                let s = v.as_str().unwrap_or_else(|| panic!("{key} = {v}"));
                if schema.get("pattern").is_some() {
                    // The only pattern used here: 1 to 12 ASCII letters or spaces.
                    let ok = (1..=12).contains(&s.len())
                        && s.chars().all(|c| c.is_ascii_alphabetic() || c == ' ');
                    assert!(ok, "{key} = {s:?} does not match the pattern");
                }
                // maxLength is not checked: llama.cpp's grammar counts a stray byte token as
                // one character, which the lossy decoding here may turn into several.
            }
            "integer" => assert!(v.is_i64() || v.is_u64(), "{key} = {v}"),
            "boolean" => assert!(v.is_boolean(), "{key} = {v}"),
            t => panic!("unexpected type {t}"),
        }
    }
}

/// Decodes `prompt` from an empty memory, then samples until an end-of-generation token or
/// `max` tokens; returns the generated text (special tokens rendered) and whether it ended.
fn generate(
    ctx: &mut Context<'_>,
    chain: &mut SamplerChain<'_>,
    prompt: &[Token],
    max: usize,
) -> (String, bool) {
    let vocab = ctx.model().vocab();
    ctx.clear_memory(true);
    ctx.decode_tokens(prompt).unwrap();
    let mut text = Vec::new();
    for _ in 0..max {
        let t = chain.sample(ctx, -1).unwrap();
        if vocab.is_eog(t) {
            // Lossy: llama.cpp's grammar matches tokens by code point and lets a few stray
            // bytes through inside JSON strings (random weights pick odd byte tokens).
            return (String::from_utf8_lossy(&text).into_owned(), true);
        }
        text.extend(vocab.piece_bytes(t, true).unwrap());
        ctx.decode_tokens(&[t]).unwrap();
    }
    (String::from_utf8_lossy(&text).into_owned(), false)
}

fn context(model: &Model) -> Context<'_> {
    // One thread: on a busy machine, idle-spinning worker threads make each step far slower.
    Context::new(model, ContextParams::default().n_ctx(1024).n_threads(1)).unwrap()
}

// ---- 1. parsing ------------------------------------------------------------------------

#[test]
fn hermes_one_call_with_text_around() {
    let reply = "I will check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\nDone.";
    let p = parse_tool_calls(ToolCallFormat::Hermes, reply).unwrap();
    assert_eq!(p.content, "I will check.\nDone.");
    assert_eq!(p.tool_calls.len(), 1);
    let c = &p.tool_calls[0];
    assert_eq!(c.id.as_deref(), Some("call_0"));
    assert_eq!(c.name, "get_weather");
    assert_eq!(c.arguments, json!({"city": "Paris", "unit": "celsius"}));
}

#[test]
fn hermes_several_calls() {
    let reply = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>\n<tool_call>\n{\"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\", \"name\": \"get_weather\"}\n</tool_call>";
    let p = parse_tool_calls(ToolCallFormat::Hermes, reply).unwrap();
    assert_eq!(p.content, "");
    let names: Vec<_> = p.tool_calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["add", "get_weather"]);
    let ids: Vec<_> = p.tool_calls.iter().map(|c| c.id.clone().unwrap()).collect();
    assert_eq!(ids, ["call_0", "call_1"]);
    assert_eq!(p.tool_calls[0].arguments, json!({"a": 1, "b": 2}));
    // Arguments written as a string of JSON are unwrapped.
    assert_eq!(p.tool_calls[1].arguments, json!({"city": "Oslo"}));
}

#[test]
fn hermes_unclosed_call_at_the_end_still_parses() {
    let reply = "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}";
    let p = parse_tool_calls(ToolCallFormat::Hermes, reply).unwrap();
    assert_eq!(p.tool_calls[0].name, "add");
}

#[test]
fn hermes_malformed_is_an_error_that_says_where() {
    let reply = "ok <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1,}}\n</tool_call>";
    let Err(Error::ToolCall(msg)) = parse_tool_calls(ToolCallFormat::Hermes, reply) else {
        panic!("malformed JSON accepted")
    };
    assert!(
        msg.contains("call 0") && msg.contains("invalid JSON"),
        "{msg}"
    );
    assert!(msg.contains("column"), "no position in {msg}");
    // A call object without a name.
    let reply = "<tool_call>{\"arguments\": {}}</tool_call>";
    let Err(Error::ToolCall(msg)) = parse_tool_calls(ToolCallFormat::Hermes, reply) else {
        panic!("nameless call accepted")
    };
    assert!(msg.contains("name"), "{msg}");
    // Cut off inside the JSON.
    assert!(parse_tool_calls(ToolCallFormat::Hermes, "<tool_call>\n{\"name\": \"ad").is_err());
}

#[test]
fn no_call_is_an_empty_list() {
    for format in [
        ToolCallFormat::Hermes,
        ToolCallFormat::Llama3Json,
        ToolCallFormat::GptOss,
    ] {
        let p = parse_tool_calls(format, "  Just an answer.  ").unwrap();
        assert!(p.tool_calls.is_empty(), "{format:?}");
    }
    let p = parse_tool_calls(ToolCallFormat::Hermes, "  Just an answer.  ").unwrap();
    assert_eq!(p.content, "Just an answer.");
}

#[test]
fn llama3_json_with_and_without_python_tag() {
    let plain = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}";
    let tagged = format!("<|python_tag|>{plain}");
    for reply in [plain.to_string(), tagged, format!("\n  {plain}  ")] {
        let p = parse_tool_calls(ToolCallFormat::Llama3Json, &reply).unwrap();
        assert_eq!(p.tool_calls.len(), 1, "{reply}");
        assert_eq!(p.tool_calls[0].name, "get_weather");
        assert_eq!(p.tool_calls[0].arguments, json!({"city": "Rome"}));
        assert_eq!(p.tool_calls[0].id.as_deref(), Some("call_0"));
        assert_eq!(p.content, "");
    }
}

#[test]
fn llama3_json_arguments_key_and_several_calls() {
    let reply = "{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}; {\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}";
    let p = parse_tool_calls(ToolCallFormat::Llama3Json, reply).unwrap();
    let args: Vec<_> = p.tool_calls.iter().map(|c| c.arguments.clone()).collect();
    assert_eq!(args, [json!({"a": 1, "b": 2}), json!({"a": 3, "b": 4})]);
}

#[test]
fn llama3_json_errors_and_plain_json_answers() {
    let bad = "<|python_tag|>{\"name\": \"add\", \"parameters\": {\"a\": }";
    let Err(Error::ToolCall(msg)) = parse_tool_calls(ToolCallFormat::Llama3Json, bad) else {
        panic!("malformed JSON accepted")
    };
    assert!(msg.contains("invalid JSON"), "{msg}");
    assert!(parse_tool_calls(ToolCallFormat::Llama3Json, "{\"name\": \"add\", ").is_err());
    // The python-style built-in call syntax is not JSON.
    assert!(
        parse_tool_calls(
            ToolCallFormat::Llama3Json,
            "<|python_tag|>brave_search.call(query=\"x\")"
        )
        .is_err()
    );
    // A JSON object that is no call (no name) and has no tag is the answer itself.
    let p = parse_tool_calls(ToolCallFormat::Llama3Json, "{\"answer\": 42}").unwrap();
    assert!(p.tool_calls.is_empty());
    assert_eq!(p.content, "{\"answer\": 42}");
    // Text first: Llama 3 calls are the whole reply.
    let p = parse_tool_calls(ToolCallFormat::Llama3Json, "Sure: {\"name\": \"add\"}").unwrap();
    assert!(p.tool_calls.is_empty());
}

#[test]
fn gpt_oss_calls_in_channel_and_header() {
    let reply = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Lima\"}<|call|>";
    let p = parse_tool_calls(ToolCallFormat::GptOss, reply).unwrap();
    assert_eq!(p.tool_calls.len(), 1);
    assert_eq!(p.tool_calls[0].name, "get_weather");
    assert_eq!(p.tool_calls[0].arguments, json!({"city": "Lima"}));
    assert_eq!(p.content, "");
    let reply =
        " to=functions.add<|channel|>commentary json<|message|>{\"a\": 1, \"b\": 2}<|call|>";
    let p = parse_tool_calls(ToolCallFormat::GptOss, reply).unwrap();
    assert_eq!(p.tool_calls[0].name, "add");
    assert_eq!(p.tool_calls[0].arguments, json!({"a": 1, "b": 2}));
    let p = parse_tool_calls(
        ToolCallFormat::GptOss,
        "<|channel|>final<|message|>It is sunny.<|return|>",
    )
    .unwrap();
    assert_eq!(p.content, "It is sunny.");
    let bad = "<|channel|>commentary to=functions.add <|constrain|>json<|message|>{\"a\": <|call|>";
    assert!(matches!(
        parse_tool_calls(ToolCallFormat::GptOss, bad),
        Err(Error::ToolCall(_))
    ));
}

// ---- 2. constrained generation, the whole output ------------------------------------------

fn grammar_chain<'m>(model: &'m Model, g: &ToolGrammar, lazy: bool, seed: u32) -> SamplerChain<'m> {
    g.constrain(SamplerChain::builder(model.vocab()), lazy)
        .dist(seed)
        .build()
        .unwrap()
}

#[test]
fn grammar_rejects_bad_tool_lists() {
    let model = common::dense();
    assert!(tool_call_grammar(ToolCallFormat::Hermes, &[], model.vocab()).is_err());
    let mut twice = tools();
    twice.push(twice[0].clone());
    assert!(tool_call_grammar(ToolCallFormat::Hermes, &twice, model.vocab()).is_err());
    let bad = [Tool::new("f", "", json!({"$ref": "#/nowhere"}))];
    assert!(matches!(
        tool_call_grammar(ToolCallFormat::Hermes, &bad, model.vocab()),
        Err(Error::ToolCall(_))
    ));
}

#[test]
fn hermes_grammar_forces_valid_calls() {
    let model = common::dense();
    let tools = tools();
    let g = tool_call_grammar(ToolCallFormat::Hermes, &tools, model.vocab()).unwrap();
    assert_eq!(g.trigger_patterns, ["<tool_call>"]);
    // `<tool_call>` is several tokens in this vocabulary: no trigger token.
    assert!(g.trigger_tokens.is_empty());
    let mut ctx = context(&model);
    let prompt = model
        .vocab()
        .tokenize("<|im_start|>assistant\n", true, true)
        .unwrap();
    let mut names = std::collections::HashSet::new();
    for seed in 0..6 {
        let mut chain = grammar_chain(&model, &g, false, seed);
        let (text, done) = generate(&mut ctx, &mut chain, &prompt, 200);
        assert!(done, "seed {seed}: no end after 200 tokens: {text:?}");
        assert!(
            text.starts_with("<tool_call>\n{") && text.ends_with("</tool_call>"),
            "{text:?}"
        );
        let p = parse_tool_calls(ToolCallFormat::Hermes, &text).unwrap();
        assert_eq!(p.tool_calls.len(), 1, "{text:?}");
        assert_eq!(p.content, "");
        assert_valid(&p.tool_calls[0], &tools);
        names.insert(p.tool_calls[0].name.clone());
    }
    // Random weights do not always pick the same tool: the grammar offers both.
    assert_eq!(names.len(), 2, "only {names:?} in 6 seeds");
}

#[test]
fn parallel_hermes_grammar_and_llama3_grammar() {
    let model = common::dense();
    let tools = tools();
    let mut ctx = context(&model);
    let prompt = model
        .vocab()
        .tokenize("<|im_start|>assistant\n", true, true)
        .unwrap();

    let opts = ToolGrammarOptions::default().parallel(true);
    let g = tool_call_grammar_with(ToolCallFormat::Hermes, &tools, model.vocab(), opts).unwrap();
    let mut chain = grammar_chain(&model, &g, false, 11);
    let (text, done) = generate(&mut ctx, &mut chain, &prompt, 400);
    assert!(done, "{text:?}");
    let p = parse_tool_calls(ToolCallFormat::Hermes, &text).unwrap();
    assert!(!p.tool_calls.is_empty());
    p.tool_calls.iter().for_each(|c| assert_valid(c, &tools));

    let g = tool_call_grammar(ToolCallFormat::Llama3Json, &tools, model.vocab()).unwrap();
    for seed in 0..3 {
        let mut chain = grammar_chain(&model, &g, false, seed);
        let (text, done) = generate(&mut ctx, &mut chain, &prompt, 200);
        assert!(done, "{text:?}");
        assert!(text.contains("\"parameters\""), "{text:?}");
        let p = parse_tool_calls(ToolCallFormat::Llama3Json, &text).unwrap();
        assert_eq!(p.tool_calls.len(), 1, "{text:?}");
        assert_valid(&p.tool_calls[0], &tools);
    }
}

#[test]
fn gpt_oss_grammar_forces_valid_calls() {
    let model = common::dense();
    let tools = tools();
    let g = tool_call_grammar(ToolCallFormat::GptOss, &tools, model.vocab()).unwrap();
    let mut ctx = context(&model);
    let prompt = model
        .vocab()
        .tokenize("<|im_start|>assistant\n", true, true)
        .unwrap();
    for seed in 0..3 {
        let mut chain = grammar_chain(&model, &g, false, seed);
        let (text, done) = generate(&mut ctx, &mut chain, &prompt, 200);
        assert!(done, "{text:?}");
        let p = parse_tool_calls(ToolCallFormat::GptOss, &text).unwrap();
        assert_eq!(p.tool_calls.len(), 1, "{text:?}");
        assert_valid(&p.tool_calls[0], &tools);
    }
}

// ---- 3. lazy: free text until the trigger, then a valid call ------------------------------

#[test]
fn lazy_grammar_is_free_before_the_trigger_and_binding_after() {
    let model = common::dense();
    let vocab = model.vocab();
    let tools = tools();
    let g = tool_call_grammar(ToolCallFormat::Hermes, &tools, vocab).unwrap();
    let mut ctx = context(&model);
    let prompt = vocab
        .tokenize("<|im_start|>assistant\n", true, true)
        .unwrap();
    ctx.decode_tokens(&prompt).unwrap();

    // A token the grammar forbids at the start of a call: `Hello` cannot begin `<tool_call>`.
    let hello = vocab.tokenize("Hello", false, false).unwrap()[0];
    let biased = |lazy: bool| {
        g.constrain(
            SamplerChain::builder(vocab).logit_bias(&[(hello, 1000.0)]),
            lazy,
        )
        .greedy()
        .build()
        .unwrap()
    };
    // Before the trigger the lazy chain leaves the candidates alone, the whole grammar does not.
    assert_eq!(biased(true).sample(&mut ctx, -1).unwrap(), hello);
    assert_ne!(biased(false).sample(&mut ctx, -1).unwrap(), hello);
    assert!(biased(true).accept(hello).is_ok());
    assert!(biased(false).accept(hello).is_err());

    for seed in 0..4 {
        // Free text, then the opening marker, as if the model had written them.
        let written = "Hello, let me check that. <tool_call>";
        let forced = vocab.tokenize(written, false, false).unwrap();
        let mut chain = grammar_chain(&model, &g, true, seed);
        ctx.clear_memory(true);
        ctx.decode_tokens(&prompt).unwrap();
        for &t in &forced {
            chain.accept(t).unwrap();
            ctx.decode_tokens(&[t]).unwrap();
        }
        let mut text = written.to_string();
        let mut done = false;
        for _ in 0..200 {
            let t = chain.sample(&mut ctx, -1).unwrap();
            if vocab.is_eog(t) {
                done = true;
                break;
            }
            text.push_str(&vocab.piece(t, true).unwrap());
            ctx.decode_tokens(&[t]).unwrap();
        }
        assert!(done, "seed {seed}: {text:?}");
        // Bound from the trigger on: the next characters are the call's.
        assert!(text[written.len()..].starts_with("\n{"), "{text:?}");
        let p = parse_tool_calls(ToolCallFormat::Hermes, &text).unwrap();
        assert_eq!(p.content, "Hello, let me check that.");
        assert_eq!(p.tool_calls.len(), 1);
        assert_valid(&p.tool_calls[0], &tools);
    }
}

#[test]
fn lazy_llama3_grammar_triggers_only_at_the_start() {
    let model = common::dense();
    let vocab = model.vocab();
    let tools = tools();
    let g = tool_call_grammar(ToolCallFormat::Llama3Json, &tools, vocab).unwrap();
    let mut ctx = context(&model);
    let prompt = vocab
        .tokenize("<|im_start|>assistant\n", true, true)
        .unwrap();
    // A reply that opens with `{` is a call: the grammar then forces its name.
    let mut chain = grammar_chain(&model, &g, true, 3);
    ctx.decode_tokens(&prompt).unwrap();
    let open = vocab.tokenize(" {", false, false).unwrap();
    for &t in &open {
        chain.accept(t).unwrap();
        ctx.decode_tokens(&[t]).unwrap();
    }
    let mut text = " {".to_string();
    let mut done = false;
    for _ in 0..200 {
        let t = chain.sample(&mut ctx, -1).unwrap();
        if vocab.is_eog(t) {
            done = true;
            break;
        }
        text.push_str(&vocab.piece(t, true).unwrap());
        ctx.decode_tokens(&[t]).unwrap();
    }
    assert!(done, "{text:?}");
    let p = parse_tool_calls(ToolCallFormat::Llama3Json, &text).unwrap();
    assert_eq!(p.tool_calls.len(), 1, "{text:?}");
    assert_valid(&p.tool_calls[0], &tools);

    // Text first: a later `{` does not trigger, so a token the grammar forbids stays possible.
    let mut chain = grammar_chain(&model, &g, true, 3);
    for t in vocab.tokenize("Sure {", false, false).unwrap() {
        chain.accept(t).unwrap();
    }
    let x = vocab.tokenize("x", false, false).unwrap()[0];
    assert!(chain.accept(x).is_ok());
}

// ---- helpers for the value checks themselves ----------------------------------------------

#[test]
fn assert_valid_catches_wrong_calls() {
    let tools = tools();
    let wrong = [
        ToolCall {
            id: None,
            name: "nope".into(),
            arguments: json!({}),
        },
        ToolCall {
            id: None,
            name: "add".into(),
            arguments: json!({"a": 1, "b": "2", "exact": true}),
        },
        ToolCall {
            id: None,
            name: "get_weather".into(),
            arguments: json!({"city": "Paris", "note": ""}),
        },
        ToolCall {
            id: None,
            name: "get_weather".into(),
            arguments: json!({"city": "Par1s", "unit": "celsius", "note": ""}),
        },
    ];
    for call in wrong {
        let r = std::panic::catch_unwind(|| assert_valid(&call, &tools));
        assert!(r.is_err(), "{call:?} passed");
    }
    let ok = ToolCall {
        id: None,
        name: "add".into(),
        arguments: json!({"a": 1, "b": -2, "exact": false}),
    };
    assert_valid(&ok, &tools);
}

// ---- 4. round trip through the real Qwen3 template ------------------------------------------

/// A tiny dense model carrying Qwen3's real template (fetched at test time), with its tool
/// markup as control tokens as in the real vocabulary.
fn qwen3_model() -> Model {
    llamacpp::backend::set_logging(false);
    let opts = SynthOptions {
        chat_template: Some(common::templates::template("Qwen-Qwen3-0.6B.jinja")),
        extra_control_tokens: [
            "<tool_call>",
            "</tool_call>",
            "<tool_response>",
            "</tool_response>",
        ]
        .map(String::from)
        .to_vec(),
        ..SynthOptions::new(Preset::LlamaTiny)
    };
    let path = llamacpp_synth::cached_model(&opts).expect("write the synthetic model");
    Model::load(path, ModelParams::default()).expect("load the synthetic model")
}

#[test]
fn round_trip_with_a_tool_result_through_the_qwen3_template() {
    let model = qwen3_model();
    let vocab = model.vocab();
    let template = ChatTemplate::from_model(&model).unwrap();
    let format = ToolCallFormat::detect(&template).expect("Qwen3 writes Hermes calls");
    assert_eq!(format, ToolCallFormat::Hermes);
    let tools = tools();
    let g = tool_call_grammar(format, &tools, vocab).unwrap();
    // Here `<tool_call>` is one control token: it triggers the lazy grammar too.
    let open = vocab.tokenize("<tool_call>", false, true).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(g.trigger_tokens, open);

    // The user asks; the grammar makes the model answer with a call.
    let question = "What is the weather in Paris?";
    let user = ChatMessage::new("user", question);
    let req = ChatRequest::new(vec![user.clone()]).tools(tools.clone());
    let prompt = tokenize_chat(vocab, &template, &req).unwrap();
    let mut ctx = context(&model);
    let mut chain = grammar_chain(&model, &g, false, 5);
    let (reply, done) = generate(&mut ctx, &mut chain, &prompt, 200);
    assert!(done, "{reply:?}");
    let parsed = parse_tool_calls(format, &reply).unwrap();
    assert_eq!(parsed.tool_calls.len(), 1, "{reply:?}");
    let call = parsed.tool_calls[0].clone();
    assert_valid(&call, &tools);

    // The call and its result go back into the conversation.
    let result = "{\"temperature\": 21, \"sky\": \"clear\"}";
    let req = ChatRequest::new(vec![
        user,
        ChatMessage::assistant_tool_calls(parsed.content.clone(), vec![call.clone()]),
        ChatMessage::tool_result(&call, result),
    ])
    .tools(tools.clone());
    let text = template.render(&req).unwrap();
    let asked = text.find(question).expect("the question");
    let after_question = &text[asked + question.len()..];
    // The rendered call parses back to the same call (the template's JSON spelling may differ).
    let turn_end = after_question
        .find("<tool_response>")
        .expect("the tool response");
    let rendered = parse_tool_calls(format, &after_question[..turn_end]).unwrap();
    assert_eq!(rendered.tool_calls.len(), 1, "{text}");
    assert_eq!(rendered.tool_calls[0].name, call.name);
    assert_eq!(rendered.tool_calls[0].arguments, call.arguments);
    let answered = after_question[turn_end..]
        .find(result)
        .expect("the result after the call");
    assert!(
        after_question[turn_end + answered..].ends_with("<|im_start|>assistant\n"),
        "{text}"
    );

    // It tokenizes with the markup (every `<tool_call>` of the template) as control tokens.
    let tokens = tokenize_chat(vocab, &template, &req).unwrap();
    let n_open = tokens.iter().filter(|&&t| t == open[0]).count();
    assert_eq!(n_open, text.matches("<tool_call>").count());
    assert!(n_open >= 2, "instructions and the call: {text}");

    // And the model answers (free text; a call it might open is held to the grammar).
    let mut chain = grammar_chain(&model, &g, true, 9);
    let (answer, _) = generate(&mut ctx, &mut chain, &tokens, 40);
    assert!(!answer.is_empty());
    let p = parse_tool_calls(format, &answer).unwrap();
    p.tool_calls.iter().for_each(|c| assert_valid(c, &tools));
}

#[test]
fn formats_are_detected_from_real_templates() {
    let cases = [
        ("Qwen-Qwen3-0.6B.jinja", Some(ToolCallFormat::Hermes)),
        (
            "Qwen-Qwen2.5-7B-Instruct.jinja",
            Some(ToolCallFormat::Hermes),
        ),
        (
            "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
            Some(ToolCallFormat::Hermes),
        ),
        (
            "meta-llama-Llama-3.1-8B-Instruct.jinja",
            Some(ToolCallFormat::Llama3Json),
        ),
        (
            "meta-llama-Llama-3.2-3B-Instruct.jinja",
            Some(ToolCallFormat::Llama3Json),
        ),
        (
            "meta-llama-Llama-3.3-70B-Instruct.jinja",
            Some(ToolCallFormat::Llama3Json),
        ),
        ("openai-gpt-oss-120b.jinja", Some(ToolCallFormat::GptOss)),
        // XML-style calls inside <tool_call>: not one of these formats.
        ("Qwen3-Coder.jinja", None),
        ("Qwen3.5-4B.jinja", None),
        ("google-gemma-2-2b-it.jinja", None),
    ];
    for (name, want) in cases {
        let src = common::templates::template(name);
        let t = ChatTemplate::jinja(&src, "<s>", "</s>").unwrap();
        assert_eq!(ToolCallFormat::detect(&t), want, "{name}");
    }
}
