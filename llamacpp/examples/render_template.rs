//! Renders a jinja chat template file with a JSON request read from stdin, and prints the text.
//! `.ci/template-check.sh` compares its output with Python jinja2's.
//!
//! ```text
//! echo '{"messages":[{"role":"user","content":"hi"}]}' \
//!     | cargo run -p llamacpp --example render_template -- template.jinja
//! ```
//!
//! The request: `messages` (roles, contents, `tool_calls`, ...), `tools`, `kwargs`,
//! `add_generation_prompt` (default true), `bos_token`, `eos_token`, and `now` (Unix seconds
//! that `strftime_now` formats; default 0, so output is reproducible).

use std::io::Read;
use std::time::{Duration, SystemTime};

use llamacpp::chat::{ChatMessage, ChatRequest, ChatTemplate, Tool};
use serde::Deserialize;

#[derive(Deserialize)]
struct Request {
    messages: Vec<ChatMessage>,
    #[serde(default)]
    tools: Vec<Tool>,
    #[serde(default)]
    kwargs: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "yes")]
    add_generation_prompt: bool,
    #[serde(default)]
    bos_token: String,
    #[serde(default)]
    eos_token: String,
    #[serde(default)]
    now: u64,
}

fn yes() -> bool {
    true
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: render_template <template.jinja> < request.json")?;
    let source = std::fs::read_to_string(&path)?;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let r: Request = serde_json::from_str(&input)?;
    let template = ChatTemplate::jinja(&source, &r.bos_token, &r.eos_token)?;
    let req = ChatRequest {
        messages: r.messages,
        tools: r.tools,
        add_generation_prompt: r.add_generation_prompt,
        kwargs: r.kwargs,
        now: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(r.now)),
    };
    print!("{}", template.render(&req)?);
    Ok(())
}
