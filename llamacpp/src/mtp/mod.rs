//! Speculative decoding with a model's own multi-token-prediction (MTP, "NextN") head.
//!
//! Qwen3-Next ships one extra transformer block after its trunk that predicts the token after
//! next from the trunk's final hidden state and the embedding of the next token. llama.cpp
//! runs it in a second context of the same model (context type MTP), which keeps a KV cache
//! for that block alone. Drafting with it costs one small block per drafted token instead of
//! a second model.
//!
//! The protocol, per position `p` of the sequence:
//! - the target (the full model, in an embeddings context) yields the post-norm hidden state
//!   `h[p]` of every token it decodes; for Qwen3-Next that is the tensor its LM head reads,
//!   which is exactly what the MTP block takes;
//! - the MTP context holds, at position `p`, the entry (token at `p`, `h[p - 1]`) (zeros at
//!   position 0) and predicts the token at `p + 1` from it;
//! - to draft, the MTP context decodes (last sampled token, `h` of the position before it),
//!   then chains on its own output hidden state for each further draft;
//! - the target verifies the drafts in one batch; rejected drafts are rolled back with a
//!   [`SeqCheckpoint`](crate::SeqCheckpoint) (the recurrent layers cannot drop a tail), and
//!   the MTP context replaces its draft entries with entries built from the target's states.
//!
//! Greedy decoding only: the output is the target's own greedy continuation, token for token
//! (up to floating-point differences between batched and single-token evaluation).
//!
//! The module is split by job: `model` loads and checks the model, `drafter` runs the MTP
//! context, `speculative` runs the draft / verify loop.

mod drafter;
mod model;
mod speculative;

pub use drafter::MtpDrafter;
pub use model::MtpModel;
pub use speculative::{MtpOutput, MtpSpeculative, MtpStats};
