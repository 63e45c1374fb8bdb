//! JSON schema → grammar: the converted grammar makes the synthetic model emit
//! JSON that matches the schema; bad schemas are errors.

mod common;

use llamacpp::grammar::json_schema_to_grammar;
use llamacpp::{
    Batch, Context, ContextParams, CustomSampler, Error, Model, SamplerChain, TokenDataArray,
};
use serde_json::Value;

const PERSON: &str = r##"{
  "type": "object",
  "properties": {
    "name":   {"type": "string", "maxLength": 8},
    "age":    {"type": "integer", "minimum": 0, "maximum": 150},
    "active": {"type": "boolean"},
    "role":   {"enum": ["admin", "user", null]},
    "tags":   {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 2},
    "home":   {"$ref": "#/$defs/point"}
  },
  "required": ["name", "age", "active", "home"],
  "additionalProperties": false,
  "$defs": {
    "point": {
      "type": "object",
      "properties": {
        "x": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "y": {"type": "integer", "exclusiveMinimum": 0}
      },
      "required": ["x", "y"],
      "additionalProperties": false
    }
  }
}"##;

/// Bans every token whose bytes are not ASCII. llama.cpp's grammar decoder
/// takes any byte >= 0xF0 as a 4-byte lead, so a random model can put invalid
/// UTF-8 inside a JSON string; ASCII keeps the output parseable.
struct AsciiOnly(Vec<bool>);

impl CustomSampler for AsciiOnly {
    fn name(&self) -> &str {
        "ascii-only"
    }
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        for c in candidates.as_mut_slice() {
            if !self.0[c.token().id() as usize] {
                c.set_logit(f32::NEG_INFINITY);
            }
        }
    }
}

/// Generates under `gbnf` with a seeded dist sampler until the grammar is done.
fn constrained(model: &Model, gbnf: &str, seed: u32) -> String {
    let vocab = model.vocab();
    let ascii = (0..vocab.n_tokens())
        .map(|id| {
            let t = vocab.token(id).unwrap();
            vocab.piece_bytes(t, false).unwrap().is_ascii()
        })
        .collect();
    let mut ctx = Context::new(model, ContextParams::default().n_ctx(1024).n_threads(1)).unwrap();
    let mut chain = SamplerChain::builder(vocab)
        .custom(AsciiOnly(ascii))
        .grammar(gbnf, "root")
        .top_k(8)
        .dist(seed)
        .build()
        .unwrap();
    let prompt = vocab.tokenize("Describe a person:", true, false).unwrap();
    let mut b = Batch::from_tokens(&prompt, 0, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    let mut pos = prompt.len() as i32;
    // Bytes, not per-token strings: a character may span tokens.
    let mut bytes = Vec::new();
    while pos < 1000 {
        // Once the grammar is complete only end-of-generation may follow (or nothing).
        let Ok(t) = chain.sample(&mut ctx, -1) else {
            break;
        };
        if vocab.is_eog(t) {
            break;
        }
        bytes.extend(vocab.piece_bytes(t, false).unwrap());
        let mut b = Batch::new(1, 1).unwrap();
        b.add(t, pos, &[0], true).unwrap();
        ctx.decode(&mut b).unwrap();
        pos += 1;
    }
    String::from_utf8(bytes).expect("ASCII only")
}

#[test]
fn converted_grammar_forces_json_matching_the_schema() {
    let gbnf = json_schema_to_grammar(PERSON).unwrap();
    assert!(gbnf.contains("root ::="), "{gbnf}");
    let model = common::dense();
    for seed in [1, 2, 3] {
        let text = constrained(&model, &gbnf, seed);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: not JSON ({e}): {text:?}"));
        let obj = v.as_object().unwrap();
        assert!(obj["name"].as_str().unwrap().chars().count() <= 8, "{text}");
        let age = obj["age"].as_i64().unwrap();
        assert!((0..=150).contains(&age), "{text}");
        assert!(obj["active"].is_boolean(), "{text}");
        let x = obj["home"]["x"].as_i64().unwrap();
        assert!((-1000..=1000).contains(&x), "{text}");
        assert!(obj["home"]["y"].as_u64().unwrap() > 0, "{text}");
        if let Some(role) = obj.get("role") {
            assert!(
                role.is_null() || role == "admin" || role == "user",
                "{text}"
            );
        }
        if let Some(tags) = obj.get("tags") {
            assert!(tags.as_array().unwrap().len() <= 2, "{text}");
        }
        let allowed = ["name", "age", "active", "role", "tags", "home"];
        assert!(obj.keys().all(|k| allowed.contains(&k.as_str())), "{text}");
    }
}

#[test]
fn bad_schemas_are_errors() {
    let bad = [
        "",
        "{",
        "not json",
        r##"{"$ref": "#/$defs/missing"}"##,
        r#"{"$ref": "https://example.invalid/schema.json"}"#,
        r#"{"type": "string", "pattern": "^(unclosed$"}"#,
        r#"{"type": "object", "properties": 5}"#,
        r#"{"anyOf": []}"#,
        r#"{"type": "integer", "minimum": "zero"}"#,
    ];
    for schema in bad {
        let r = json_schema_to_grammar(schema);
        assert!(matches!(r, Err(Error::JsonSchema(_))), "{schema}: {r:?}");
    }
    // Pathological but valid: long names, recursion, deep nesting within limits.
    let long_name = format!(
        r#"{{"type": "object", "properties": {{"{}": {{"type": "null"}}}}}}"#,
        "!".repeat(100_000)
    );
    assert!(json_schema_to_grammar(&long_name).is_ok());
    let recursive = r##"{"$defs": {"node": {"type": "object",
        "properties": {"next": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/node"}]}}}},
        "$ref": "#/$defs/node"}"##;
    assert!(json_schema_to_grammar(recursive).is_ok());
    let deep = format!(
        "{}{{}}{}",
        r#"{"type": "array", "items": "#.repeat(100),
        "}".repeat(100)
    );
    assert!(json_schema_to_grammar(&deep).is_ok());
}
