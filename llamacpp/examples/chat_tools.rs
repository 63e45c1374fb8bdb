//! Tool use: the model is offered a `get_weather` tool, a grammar makes it write a valid call,
//! the call is parsed and answered with a made-up result, and the model writes its reply:
//! `cargo run --example chat_tools -- [-m MODEL] [-t THREADS]`.
//!
//! With a real model (Qwen3, Llama 3.x, gpt-oss) the format comes from its chat template.
//! Without `-m`, a tiny synthetic model with random weights and a ChatML template is used:
//! its template does not show the tools, so the format falls back to Hermes, and its text
//! is noise, but the call it is made to write is still a valid one.

#[path = "common/mod.rs"]
mod common;

use llamacpp::chat::{
    ChatMessage, ChatRequest, ChatTemplate, Tool, ToolCallFormat, parse_tool_calls, tokenize_chat,
    tool_call_grammar,
};
use llamacpp::{Context, ContextParams, Model, ModelParams, SamplerChain, Token};
use serde_json::json;

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let real_model = common::arg("-m").is_some() || common::arg("--model").is_some();
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    // One thread for the tiny model: extra threads only add synchronisation there.
    let threads = match common::arg("-t") {
        Some(t) => t.parse().unwrap_or(1),
        None if real_model => std::thread::available_parallelism().map_or(1, |n| n.get() as i32),
        None => 1,
    };
    let template = ChatTemplate::from_model(&model)?;
    let format = ToolCallFormat::detect(&template).unwrap_or(ToolCallFormat::Hermes);
    println!("tool call format: {format:?}");

    let tools = vec![Tool::new(
        "get_weather",
        "The current weather in a city",
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[A-Za-z ]{1,20}$"},
                "unit": {"enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city", "unit"],
            "additionalProperties": false
        }),
    )];
    let mut messages = vec![ChatMessage::new("user", "What is the weather in Paris?")];
    let mut ctx = Context::new(
        &model,
        ContextParams::default().n_ctx(4096).n_threads(threads),
    )?;

    // 1. The call. Not lazy: the reply must be a call. A lazy grammar (`true`) lets the
    //    model answer in text and only holds it to the grammar once it opens a call.
    let grammar = tool_call_grammar(format, &tools, model.vocab())?;
    let mut sampler = grammar
        .constrain(SamplerChain::builder(model.vocab()), false)
        .temp(0.7)
        .dist(1)
        .build()?;
    let req = ChatRequest::new(messages.clone()).tools(tools.clone());
    let prompt = tokenize_chat(model.vocab(), &template, &req)?;
    let reply = generate(&mut ctx, &mut sampler, &prompt, 256)?;
    println!("model: {reply}");
    let parsed = parse_tool_calls(format, &reply)?;
    let Some(call) = parsed.tool_calls.first().cloned() else {
        println!("(no tool call)");
        return Ok(());
    };
    println!(
        "call {}: {}({})",
        call.id.as_deref().unwrap_or("-"),
        call.name,
        call.arguments
    );

    // 2. Its result, made up here, and the model's answer.
    let unit = call.arguments["unit"].as_str().unwrap_or("celsius");
    let result = json!({"temperature": 21, "unit": unit, "sky": "clear"}).to_string();
    println!("tool: {result}");
    messages.push(ChatMessage::assistant_tool_calls(
        parsed.content,
        parsed.tool_calls.clone(),
    ));
    messages.push(ChatMessage::tool_result(&call, result));
    let req = ChatRequest::new(messages).tools(tools);
    let prompt = tokenize_chat(model.vocab(), &template, &req)?;
    let mut sampler = SamplerChain::builder(model.vocab())
        .top_k(40)
        .temp(0.7)
        .dist(2)
        .build()?;
    let answer = generate(&mut ctx, &mut sampler, &prompt, 64)?;
    println!("model: {answer}");
    Ok(())
}

/// Decodes `prompt` from an empty memory and samples until an end-of-generation token or
/// `max` tokens; the text has special tokens rendered, so call markers stay visible.
fn generate(
    ctx: &mut Context<'_>,
    sampler: &mut SamplerChain<'_>,
    prompt: &[Token],
    max: usize,
) -> llamacpp::Result<String> {
    let vocab = ctx.model().vocab();
    ctx.clear_memory(true);
    ctx.decode_tokens(prompt)?;
    let mut bytes = Vec::new();
    for _ in 0..max {
        let t = sampler.sample(ctx, -1)?;
        if vocab.is_eog(t) {
            break;
        }
        bytes.extend(vocab.piece_bytes(t, true)?);
        ctx.decode_tokens(&[t])?;
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
