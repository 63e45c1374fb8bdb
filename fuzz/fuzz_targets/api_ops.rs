//! An arbitrary sequence of batch and memory calls on a live two-sequence
//! context: adds, decodes, logits, seq_rm/cp/keep/add/div, position queries,
//! sequence state round trips and clears.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use llamacpp::Batch;

#[derive(Arbitrary, Debug)]
enum Op {
    Add {
        token: i32,
        pos: i32,
        seqs: Vec<i8>,
        output: bool,
    },
    Decode,
    ClearBatch,
    Logits(i32),
    SeqRm {
        seq: Option<i8>,
        p0: Option<i32>,
        p1: Option<i32>,
    },
    SeqCp {
        src: i8,
        dst: i8,
        p0: Option<i32>,
        p1: Option<i32>,
    },
    SeqKeep(i8),
    SeqAdd {
        seq: i8,
        p0: Option<i32>,
        p1: Option<i32>,
        delta: i32,
    },
    SeqDiv {
        seq: i8,
        p0: Option<i32>,
        p1: Option<i32>,
        d: i32,
    },
    PosRange(i8),
    SeqStateRoundTrip {
        from: i8,
        to: i8,
    },
    Clear(bool),
}

fuzz_target!(|ops: Vec<Op>| {
    let vocab = llamacpp_fuzz::dense().vocab();
    let mut ctx = llamacpp_fuzz::dense_context();
    ctx.clear_memory(true);
    let Ok(mut batch) = Batch::new(64, 2) else {
        return;
    };
    for op in ops.into_iter().take(64) {
        match op {
            Op::Add {
                token,
                pos,
                seqs,
                output,
            } => {
                let seqs: Vec<i32> = seqs.iter().take(4).map(|&s| i32::from(s)).collect();
                if let Ok(t) = vocab.token(token) {
                    let _ = batch.add(t, pos, &seqs, output);
                }
            }
            Op::Decode => {
                let _ = ctx.decode(&mut batch);
                batch.clear();
            }
            Op::ClearBatch => batch.clear(),
            Op::Logits(i) => {
                let _ = ctx.logits(i);
            }
            Op::SeqRm { seq, p0, p1 } => {
                let _ = ctx.seq_rm(seq.map(i32::from), p0, p1);
            }
            Op::SeqCp { src, dst, p0, p1 } => {
                let _ = ctx.seq_cp(src.into(), dst.into(), p0, p1);
            }
            Op::SeqKeep(s) => {
                let _ = ctx.seq_keep(s.into());
            }
            Op::SeqAdd { seq, p0, p1, delta } => {
                let _ = ctx.seq_add(seq.into(), p0, p1, delta);
            }
            Op::SeqDiv { seq, p0, p1, d } => {
                let _ = ctx.seq_div(seq.into(), p0, p1, d);
            }
            Op::PosRange(s) => {
                let _ = ctx.seq_pos_min(s.into());
                let _ = ctx.seq_pos_max(s.into());
            }
            Op::SeqStateRoundTrip { from, to } => {
                if let Ok(bytes) = ctx.seq_state(from.into()) {
                    let _ = ctx.set_seq_state(&bytes, to.into());
                }
            }
            Op::Clear(data) => ctx.clear_memory(data),
        }
    }
});
