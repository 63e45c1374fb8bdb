//! Arbitrary bytes as a whole-context state, a sequence state, and a state file
//! (whole and per sequence); after any of them the context must still decode.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llamacpp::Batch;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    how: u8,
    seq: i8,
    max_tokens: u16,
    bytes: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let model = llamacpp_fuzz::dense();
    let mut ctx = llamacpp_fuzz::dense_context();
    let seq = i32::from(input.seq);
    match input.how % 4 {
        0 => {
            let _ = ctx.set_state(input.bytes);
        }
        1 => {
            let _ = ctx.set_seq_state(input.bytes, seq);
        }
        2 | 3 => {
            let path = llamacpp_fuzz::scratch("state.bin");
            if std::fs::write(&path, input.bytes).is_ok() {
                if input.how % 4 == 2 {
                    let _ = ctx.load_state_file(&path, usize::from(input.max_tokens));
                } else {
                    let _ = ctx.load_seq_state_file(&path, seq);
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        _ => unreachable!(),
    }
    // Whatever happened, a cleared context decodes again.
    ctx.clear_memory(true);
    let vocab = model.vocab();
    let ids: Vec<_> = (1..4).filter_map(|i| vocab.token(i).ok()).collect();
    let mut batch = match Batch::from_tokens(&ids, 0, 0) {
        Ok(b) => b,
        Err(e) => panic!("batch of three tokens: {e}"),
    };
    if let Err(e) = ctx.decode(&mut batch) {
        panic!("the context is unusable after a state load: {e}");
    }
});
