//! A sampler written in Rust inside a llama.cpp chain: no token may repeat one
//! of the last few generated ones.
//!
//! `cargo run --example custom_sampler -- [-m MODEL] [-n TOKENS]`

#[path = "common/mod.rs"]
mod common;

use std::collections::VecDeque;

use llamacpp::generate::{Generator, StopAt};
use llamacpp::{
    Context, ContextParams, CustomSampler, Model, ModelParams, SamplerChain, Token, TokenDataArray,
};

/// Bans the last `window` accepted tokens.
struct NoRecentRepeat {
    window: usize,
    recent: VecDeque<Token>,
}

impl CustomSampler for NoRecentRepeat {
    fn name(&self) -> &str {
        "no-recent-repeat"
    }

    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        for c in candidates.as_mut_slice() {
            if self.recent.contains(&c.token()) {
                c.set_logit(f32::NEG_INFINITY);
            }
        }
    }

    fn accept(&mut self, token: Token) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
    }

    fn reset(&mut self) {
        self.recent.clear();
    }

    fn clone_sampler(&self) -> Option<Box<dyn CustomSampler>> {
        Some(Box::new(NoRecentRepeat {
            window: self.window,
            recent: self.recent.clone(),
        }))
    }
}

fn main() -> llamacpp::Result<()> {
    llamacpp::backend::set_logging(false);
    let n: usize = common::arg("-n").and_then(|s| s.parse().ok()).unwrap_or(32);
    let model = Model::load(
        common::model_path(llamacpp_synth::Preset::LlamaTiny),
        ModelParams::default(),
    )?;
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(512))?;
    let mut sampler = SamplerChain::builder(model.vocab())
        .custom(NoRecentRepeat {
            window: 8,
            recent: VecDeque::new(),
        })
        .greedy()
        .build()?;
    let prompt = model.vocab().tokenize("Once upon a time", true, false)?;
    let generator = Generator::new(
        &mut ctx,
        &mut sampler,
        &prompt,
        0,
        StopAt {
            max_tokens: n,
            stop_strings: vec![],
        },
    )?;
    println!("{}", generator.collect_text()?);
    Ok(())
}
