//! Arbitrary text and token ids through the vocabulary: tokenize (with and
//! without special tokens), detokenize, pieces, texts and attributes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    ids: Vec<i32>,
    add_special: bool,
    parse_special: bool,
    remove_special: bool,
    unparse_special: bool,
}

fuzz_target!(|input: Input<'_>| {
    let vocab = llamacpp_fuzz::dense().vocab();
    if let Ok(tokens) = vocab.tokenize(input.text, input.add_special, input.parse_special) {
        let _ = vocab.detokenize(&tokens, input.remove_special, input.unparse_special);
    }
    let tokens: Vec<_> = input
        .ids
        .iter()
        .filter_map(|&id| vocab.token(id).ok())
        .collect();
    let _ = vocab.detokenize(&tokens, input.remove_special, input.unparse_special);
    for t in tokens {
        let _ = vocab.piece_bytes(t, input.unparse_special);
        let _ = vocab.text(t);
        let _ = vocab.attr(t);
    }
});
