//! A chat template: the model's own jinja template, or one of llama.cpp's built-in formats.

use std::time::SystemTime;

use minijinja::value::Value;

use super::jinja::{self, TEMPLATE_NAME};
use super::{ChatMessage, Tool, apply_template};
use crate::Model;
use crate::error::{Error, Result};

/// What a template is asked to render: the conversation, the tools, whether to open the
/// assistant's turn, and extra template variables.
///
/// ```
/// use llamacpp::chat::{ChatMessage, ChatRequest};
/// let req = ChatRequest::new(vec![ChatMessage::new("user", "hi")])
///     .kwarg("enable_thinking", false);
/// assert!(req.add_generation_prompt);
/// assert_eq!(req.kwargs["enable_thinking"], false);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call (`tools` in the template; none when empty).
    pub tools: Vec<Tool>,
    /// Whether to end with the header of the assistant's turn.
    pub add_generation_prompt: bool,
    /// Extra template variables, such as `enable_thinking` or `reasoning_effort`.
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// The time `strftime_now` formats (`None`: the clock).
    pub now: Option<SystemTime>,
}

impl ChatRequest {
    /// A request for `messages` that opens the assistant's turn.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            add_generation_prompt: true,
            ..Self::default()
        }
    }

    /// With these tools.
    pub fn tools(mut self, tools: Vec<Tool>) -> Self {
        self.tools = tools;
        self
    }

    /// With the template variable `key` set to `value`.
    pub fn kwarg(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.kwargs.insert(key.into(), value.into());
        self
    }

    /// With `strftime_now` seeing `now` instead of the clock (for reproducible prompts).
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// With or without the assistant's turn header at the end.
    pub fn add_generation_prompt(mut self, yes: bool) -> Self {
        self.add_generation_prompt = yes;
        self
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// Rendered by minijinja; `bos`/`eos` are the texts the template sees.
    Jinja { bos: String, eos: String },
    /// Rendered by llama.cpp's `llama_chat_apply_template` (a name or detected from text).
    Builtin,
}

/// A chat template: a jinja template (normally the model's `tokenizer.chat_template`) or one
/// of llama.cpp's built-in formats (by name, or detected from a template's text).
///
/// ```
/// use llamacpp::chat::{ChatMessage, ChatRequest, ChatTemplate};
/// let t = ChatTemplate::jinja(
///     "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}",
///     "<s>",
///     "</s>",
/// )?;
/// let text = t.render(&ChatRequest::new(vec![ChatMessage::new("user", "hi")]))?;
/// assert_eq!(text, "[user] hi\n");
/// # Ok::<(), llamacpp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: String,
    kind: Kind,
}

impl ChatTemplate {
    /// The model's `tokenizer.chat_template`, as jinja with the vocabulary's BOS and EOS texts as
    /// `bos_token` and `eos_token`; a text that does not compile as jinja goes to llama.cpp's
    /// built-in detection.
    ///
    /// # Errors
    /// [`Error::ChatTemplate`] when the model has no template, or its text is neither valid
    /// jinja nor a format llama.cpp recognises.
    ///
    /// ```no_run
    /// # let model = llamacpp::Model::load("m.gguf", Default::default())?;
    /// let t = llamacpp::chat::ChatTemplate::from_model(&model)?;
    /// assert!(t.is_jinja());
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn from_model(model: &Model) -> Result<ChatTemplate> {
        let source = model
            .chat_template(None)
            .ok_or_else(|| Error::ChatTemplate("the model has no chat template".into()))?;
        let vocab = model.vocab();
        let text = |t: Option<crate::Token>| t.and_then(|t| vocab.text(t).ok()).unwrap_or_default();
        match Self::jinja(&source, &text(vocab.bos()), &text(vocab.eos())) {
            Ok(t) => Ok(t),
            Err(jinja_err) => {
                let builtin = Self::builtin(&source);
                // Detection fails on an unknown text: say so now, not at the first render.
                apply_template(&source, &[ChatMessage::new("user", "x")], true).map_err(|_| {
                    Error::ChatTemplate(format!(
                        "the model's template is neither valid jinja ({jinja_err}) nor a \
                         format llama.cpp knows"
                    ))
                })?;
                Ok(builtin)
            }
        }
    }

    /// A jinja template with the given `bos_token` and `eos_token` texts.
    ///
    /// # Errors
    /// [`Error::ChatTemplate`] when `source` does not compile.
    pub fn jinja(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        jinja::environment(source, None).map_err(|e| jinja_error("compile", &e))?;
        Ok(Self {
            source: source.to_owned(),
            kind: Kind::Jinja {
                bos: bos_token.to_owned(),
                eos: eos_token.to_owned(),
            },
        })
    }

    /// One of llama.cpp's built-in formats: a name from
    /// [`builtin_templates`](super::builtin_templates) (`chatml`, `llama3`, ...) or a template
    /// text llama.cpp recognises. It renders roles and contents only: requests with tools,
    /// kwargs, tool calls or reasoning are refused rather than silently dropped.
    ///
    /// ```
    /// use llamacpp::chat::{ChatMessage, ChatRequest, ChatTemplate};
    /// let t = ChatTemplate::builtin("chatml");
    /// let text = t.render(&ChatRequest::new(vec![ChatMessage::new("user", "hi")]))?;
    /// assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    /// assert!(t.render(&ChatRequest::new(vec![]).kwarg("enable_thinking", false)).is_err());
    /// # Ok::<(), llamacpp::Error>(())
    /// ```
    pub fn builtin(name_or_source: &str) -> ChatTemplate {
        Self {
            source: name_or_source.to_owned(),
            kind: Kind::Builtin,
        }
    }

    /// The template's text (or the built-in name it was made from).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is rendered as jinja (not by llama.cpp's built-in formats).
    pub fn is_jinja(&self) -> bool {
        matches!(self.kind, Kind::Jinja { .. })
    }

    /// The `bos_token` text a jinja template sees (`None` for built-in formats).
    pub(crate) fn bos_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Jinja { bos, .. } => Some(bos),
            Kind::Builtin => None,
        }
    }

    /// The prompt text for `req`.
    ///
    /// # Errors
    /// [`Error::ChatTemplate`] when the template fails (including its own
    /// `raise_exception`, whose message is kept), or a built-in format is asked for what it
    /// cannot render.
    pub fn render(&self, req: &ChatRequest) -> Result<String> {
        match &self.kind {
            Kind::Builtin => self.render_builtin(req),
            Kind::Jinja { bos, eos } => {
                let env = jinja::environment(&self.source, req.now)
                    .map_err(|e| jinja_error("compile", &e))?;
                let tmpl = env
                    .get_template(TEMPLATE_NAME)
                    .map_err(|e| jinja_error("compile", &e))?;
                tmpl.render(context(req, bos, eos))
                    .map_err(|e| jinja_error("render", &e))
            }
        }
    }

    fn render_builtin(&self, req: &ChatRequest) -> Result<String> {
        let refuse = |what: &str| {
            Err(Error::ChatTemplate(format!(
                "the built-in template {:.40} cannot render {what}",
                self.source
            )))
        };
        if !req.tools.is_empty() {
            return refuse("tools");
        }
        if let Some(k) = req.kwargs.keys().next() {
            return refuse(&format!("template variables ({k})"));
        }
        if req.messages.iter().any(|m| !m.tool_calls.is_empty()) {
            return refuse("tool calls");
        }
        if req.messages.iter().any(|m| m.reasoning_content.is_some()) {
            return refuse("reasoning content");
        }
        apply_template(&self.source, &req.messages, req.add_generation_prompt)
    }
}

/// A minijinja error with its cause chain (the template's line is in the display).
fn jinja_error(stage: &str, e: &minijinja::Error) -> Error {
    use std::error::Error as _;
    let mut msg = format!("{stage}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    Error::ChatTemplate(msg)
}

/// The variables transformers gives a template: `messages`, `tools` (none when empty),
/// `add_generation_prompt`, `bos_token`, `eos_token`, then the request's kwargs.
fn context(req: &ChatRequest, bos: &str, eos: &str) -> Value {
    let messages: Vec<Value> = req.messages.iter().map(message_value).collect();
    let tools = if req.tools.is_empty() {
        Value::from(())
    } else {
        Value::from(req.tools.iter().map(tool_value).collect::<Vec<_>>())
    };
    let mut vars = vec![
        ("messages".to_owned(), Value::from(messages)),
        ("tools".to_owned(), tools),
        (
            "add_generation_prompt".to_owned(),
            Value::from(req.add_generation_prompt),
        ),
        ("bos_token".to_owned(), Value::from(bos)),
        ("eos_token".to_owned(), Value::from(eos)),
    ];
    for (k, v) in &req.kwargs {
        let v = jinja::from_json(v);
        match vars.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => vars.push((k.clone(), v)),
        }
    }
    jinja::map(vars)
}

/// A message in the OpenAI shape templates expect; optional fields only when set.
fn message_value(m: &ChatMessage) -> Value {
    let s = |v: &str| Value::from(v);
    let mut fields = vec![
        ("role".to_owned(), s(&m.role)),
        ("content".to_owned(), s(&m.content)),
    ];
    if let Some(r) = &m.reasoning_content {
        fields.push(("reasoning_content".to_owned(), s(r)));
    }
    if !m.tool_calls.is_empty() {
        let calls = m.tool_calls.iter().map(|c| {
            let mut call = vec![("type".to_owned(), s("function"))];
            if let Some(id) = &c.id {
                call.push(("id".to_owned(), s(id)));
            }
            let function = jinja::map([
                ("name".to_owned(), s(&c.name)),
                ("arguments".to_owned(), jinja::from_json(&c.arguments)),
            ]);
            call.push(("function".to_owned(), function));
            jinja::map(call)
        });
        fields.push((
            "tool_calls".to_owned(),
            Value::from(calls.collect::<Vec<_>>()),
        ));
    }
    if let Some(id) = &m.tool_call_id {
        fields.push(("tool_call_id".to_owned(), s(id)));
    }
    if let Some(name) = &m.name {
        fields.push(("name".to_owned(), s(name)));
    }
    jinja::map(fields)
}

/// A tool as `{"type": "function", "function": {name, description, parameters}}`.
fn tool_value(t: &Tool) -> Value {
    let function = jinja::map([
        ("name".to_owned(), Value::from(t.name.as_str())),
        (
            "description".to_owned(),
            Value::from(t.description.as_str()),
        ),
        ("parameters".to_owned(), jinja::from_json(&t.parameters)),
    ]);
    jinja::map([
        ("type".to_owned(), Value::from("function")),
        ("function".to_owned(), function),
    ])
}

/// A built-in template by name (`"chatml"`, ...) or a template text for llama.cpp's heuristics;
/// use [`ChatTemplate::from_model`] for a model's own jinja template.
impl From<&str> for ChatTemplate {
    fn from(name_or_source: &str) -> Self {
        ChatTemplate::builtin(name_or_source)
    }
}

/// As `From<&str>`.
impl From<String> for ChatTemplate {
    fn from(name_or_source: String) -> Self {
        ChatTemplate::builtin(&name_or_source)
    }
}
