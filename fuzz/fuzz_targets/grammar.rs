//! Arbitrary GBNF grammars (plain and lazy, with arbitrary trigger patterns) and
//! JSON schemas through a sampler chain: build, sample, accept.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llamacpp::{Batch, SamplerChain};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    grammar: &'a str,
    root: &'a str,
    schema: bool,
    lazy_patterns: Option<Vec<&'a str>>,
    steps: u8,
}

fuzz_target!(|input: Input<'_>| {
    let model = llamacpp_fuzz::dense();
    let gbnf = if input.schema {
        match llamacpp::grammar::json_schema_to_grammar(input.grammar) {
            Ok(g) => g,
            Err(_) => return,
        }
    } else {
        input.grammar.to_owned()
    };
    let root = if input.root.is_empty() {
        "root"
    } else {
        input.root
    };
    let builder = SamplerChain::builder(model.vocab());
    let builder = match &input.lazy_patterns {
        Some(p) => builder.grammar_lazy(&gbnf, root, p, &[]),
        None => builder.grammar(&gbnf, root),
    };
    let Ok(mut chain) = builder.greedy().build() else {
        return;
    };
    let mut ctx = llamacpp_fuzz::dense_context();
    ctx.clear_memory(true);
    let vocab = model.vocab();
    let mut pos = 0;
    let Ok(mut next) = vocab.token(1) else { return };
    for _ in 0..input.steps % 8 {
        let Ok(mut batch) = Batch::from_tokens(&[next], pos, 0) else {
            return;
        };
        if ctx.decode(&mut batch).is_err() {
            return;
        }
        pos += 1;
        match chain.sample(&mut ctx, -1) {
            Ok(t) => {
                if chain.accept(t).is_err() {
                    return;
                }
                next = t;
            }
            Err(_) => return,
        }
    }
});
