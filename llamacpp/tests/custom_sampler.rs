//! Samplers written in Rust, on the synthetic dense model: they steer C's
//! selecting samplers, their panics are errors, and seeded chains repeat.

mod common;

use std::sync::{Arc, Mutex};

use llamacpp::{
    Batch, Context, ContextParams, CustomSampler, Error, Model, SamplerChain, Token, TokenDataArray,
};

/// A context that has decoded a short prompt; returns it with the next position.
fn primed(model: &Model) -> (Context<'_>, i32) {
    let mut ctx = Context::new(model, ContextParams::default().n_ctx(256).n_threads(1)).unwrap();
    let p = model
        .vocab()
        .tokenize("Once upon a time there was", true, false)
        .unwrap();
    let mut b = Batch::from_tokens(&p, 0, 0).unwrap();
    ctx.decode(&mut b).unwrap();
    (ctx, p.len() as i32)
}

fn step(ctx: &mut Context<'_>, t: Token, pos: i32) {
    let mut b = Batch::new(1, 1).unwrap();
    b.add(t, pos, &[0], true).unwrap();
    ctx.decode(&mut b).unwrap();
}

/// Index of the largest logit, skipping `banned`.
fn argmax_except(logits: &[f32], banned: &[i32]) -> i32 {
    let mut best = None::<(usize, f32)>;
    for (i, &l) in logits.iter().enumerate() {
        if banned.contains(&(i as i32)) {
            continue;
        }
        if best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as i32).unwrap()
}

/// Bans a set of tokens (logit -inf).
struct Ban(Vec<Token>);

impl CustomSampler for Ban {
    fn name(&self) -> &str {
        "ban"
    }
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        for c in candidates.as_mut_slice() {
            if self.0.contains(&c.token()) {
                c.set_logit(f32::NEG_INFINITY);
            }
        }
    }
    fn clone_sampler(&self) -> Option<Box<dyn CustomSampler>> {
        Some(Box::new(Ban(self.0.clone())))
    }
}

#[test]
fn a_rust_ban_is_respected_by_greedy() {
    let model = common::dense();
    let (mut ctx, mut pos) = primed(&model);
    let mut plain = SamplerChain::builder(model.vocab())
        .greedy()
        .build()
        .unwrap();
    let first = plain.sample(&mut ctx, -1).unwrap();
    // Ban the token greedy wants now, and every token it picks after that.
    let mut banned = vec![first];
    for _ in 0..12 {
        let mut chain = SamplerChain::builder(model.vocab())
            .custom(Ban(banned.clone()))
            .greedy()
            .build()
            .unwrap();
        let t = chain.sample(&mut ctx, -1).unwrap();
        let ids: Vec<i32> = banned.iter().map(|t| t.id()).collect();
        assert!(!banned.contains(&t), "banned token {t} was sampled");
        assert_eq!(t.id(), argmax_except(ctx.logits(-1).unwrap(), &ids));
        banned.push(t);
        step(&mut ctx, t, pos);
        pos += 1;
    }
}

/// Reverses the candidates' order by logit and keeps one: greedy must take it.
struct Worst;

impl CustomSampler for Worst {
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        candidates.sort_by_logit();
        candidates.as_mut_slice().reverse();
        candidates.truncate(0); // clamped: one candidate always remains
        assert_eq!(candidates.len(), 1);
        assert!(!candidates.is_sorted());
    }
}

#[test]
fn truncation_keeps_one_candidate_and_c_respects_it() {
    let model = common::dense();
    let (mut ctx, _) = primed(&model);
    let mut chain = SamplerChain::builder(model.vocab())
        .custom(Worst)
        .greedy()
        .build()
        .unwrap();
    let t = chain.sample(&mut ctx, -1).unwrap();
    let logits = ctx.logits(-1).unwrap();
    let min = logits.iter().copied().fold(f32::INFINITY, f32::min);
    assert_eq!(logits[t.id() as usize], min);
}

/// Panics in `apply` on call `at` (counting from 1), or in `accept` when `in_accept`.
struct Faulty {
    calls: usize,
    at: usize,
    in_accept: bool,
}

impl CustomSampler for Faulty {
    fn name(&self) -> &str {
        "faulty"
    }
    fn apply(&mut self, _candidates: &mut TokenDataArray<'_>) {
        self.calls += 1;
        if !self.in_accept && self.calls == self.at {
            panic!("boom at call {}", self.calls);
        }
    }
    fn accept(&mut self, _token: Token) {
        if self.in_accept {
            panic!("boom in accept");
        }
    }
    fn reset(&mut self) {
        self.calls = 0;
        self.at = usize::MAX;
    }
}

#[test]
fn a_panicking_sampler_is_an_error_and_the_process_survives() {
    let model = common::dense();
    let (mut ctx, _) = primed(&model);
    let mut chain = SamplerChain::builder(model.vocab())
        .custom(Faulty {
            calls: 0,
            at: 2,
            in_accept: false,
        })
        .top_k(10)
        .dist(5)
        .build()
        .unwrap();
    assert!(chain.sample(&mut ctx, -1).is_ok());
    match chain.sample(&mut ctx, -1) {
        Err(Error::CustomSampler { name, message }) => {
            assert_eq!(name, "faulty");
            assert!(message.contains("boom at call 2"), "{message}");
        }
        other => panic!("expected a custom-sampler error, got {other:?}"),
    }
    // Disabled until reset: every call fails, naming the first panic.
    let again = chain.sample(&mut ctx, -1);
    assert!(
        matches!(&again, Err(Error::CustomSampler { message, .. }) if message.contains("earlier panic")),
        "{again:?}"
    );
    let t = ctx.model().vocab().token(1).unwrap();
    assert!(chain.accept(t).is_err());
    chain.reset();
    for _ in 0..3 {
        assert!(chain.sample(&mut ctx, -1).is_ok());
    }

    // A panic in accept, reached both from sample and from accept.
    let mut chain = SamplerChain::builder(model.vocab())
        .custom(Faulty {
            calls: 0,
            at: 0,
            in_accept: true,
        })
        .greedy()
        .build()
        .unwrap();
    assert!(matches!(
        chain.sample(&mut ctx, -1),
        Err(Error::CustomSampler { .. })
    ));
    chain.reset();
    assert!(matches!(chain.accept(t), Err(Error::CustomSampler { .. })));
}

/// Claims to select but panics or forgets to: the chain must not abort.
struct BadSelector {
    panics: bool,
}

impl CustomSampler for BadSelector {
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        candidates.clear_selection();
        if self.panics {
            panic!("selector failed");
        }
    }
    fn selects(&self) -> bool {
        true
    }
}

#[test]
fn a_selecting_sampler_that_selects_nothing_is_an_error_not_an_abort() {
    let model = common::dense();
    let (mut ctx, _) = primed(&model);
    for panics in [false, true] {
        let mut chain = SamplerChain::builder(model.vocab())
            .custom(BadSelector { panics })
            .build()
            .unwrap();
        // Twice: the second call runs the poisoned (or again faulty) selector.
        for _ in 0..2 {
            assert!(matches!(
                chain.sample(&mut ctx, -1),
                Err(Error::CustomSampler { .. })
            ));
        }
    }
}

/// Keeps the `k` best candidates and sharpens them (a Rust top-k + temperature).
struct TopKTemp {
    k: usize,
    temp: f32,
}

impl CustomSampler for TopKTemp {
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        candidates.sort_by_logit();
        candidates.truncate(self.k);
        for c in candidates.as_mut_slice() {
            c.set_logit(c.logit() / self.temp);
        }
    }
    fn clone_sampler(&self) -> Option<Box<dyn CustomSampler>> {
        Some(Box::new(TopKTemp {
            k: self.k,
            temp: self.temp,
        }))
    }
}

/// Samples proportionally to softmax with its own seeded xorshift RNG.
struct RustDist {
    seed: u64,
    state: u64,
    seen: Arc<Mutex<Vec<Token>>>,
}

impl RustDist {
    fn new(seed: u64, seen: Arc<Mutex<Vec<Token>>>) -> Self {
        Self {
            seed,
            state: seed | 1,
            seen,
        }
    }
    fn next(&mut self) -> f32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 40) as f32 / (1u64 << 24) as f32
    }
}

impl CustomSampler for RustDist {
    fn apply(&mut self, candidates: &mut TokenDataArray<'_>) {
        candidates.softmax();
        let mut r = self.next();
        let mut pick = candidates.len() - 1;
        for (i, c) in candidates.as_slice().iter().enumerate() {
            if r < c.p() {
                pick = i;
                break;
            }
            r -= c.p();
        }
        candidates.select(pick).unwrap();
    }
    fn accept(&mut self, token: Token) {
        self.seen.lock().unwrap().push(token);
    }
    fn reset(&mut self) {
        self.state = self.seed | 1;
    }
    fn selects(&self) -> bool {
        true
    }
}

fn generate(model: &Model, chain: &mut SamplerChain<'_>, n: usize) -> Vec<Token> {
    let (mut ctx, mut pos) = primed(model);
    let mut out = Vec::new();
    for _ in 0..n {
        let t = chain.sample(&mut ctx, -1).unwrap();
        out.push(t);
        step(&mut ctx, t, pos);
        pos += 1;
    }
    out
}

#[test]
fn seeded_chains_with_rust_samplers_repeat_and_clones_follow() {
    let model = common::dense();
    let chain = |seed: u32| {
        SamplerChain::builder(model.vocab())
            .custom(TopKTemp { k: 40, temp: 0.2 })
            .dist(seed)
            .build()
            .unwrap()
    };
    assert_eq!(chain(11).seed(), Some(11));
    let a = generate(&model, &mut chain(11), 16);
    assert_eq!(a, generate(&model, &mut chain(11), 16));
    assert_ne!(a, generate(&model, &mut chain(12), 16));

    // A Rust selector: deterministic, sees every sampled token through accept.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rust = SamplerChain::builder(model.vocab())
        .custom(TopKTemp { k: 40, temp: 0.2 })
        .custom(RustDist::new(99, seen.clone()))
        .build()
        .unwrap();
    let b = generate(&model, &mut rust, 16);
    assert_eq!(*seen.lock().unwrap(), b);
    rust.reset();
    assert_eq!(b, generate(&model, &mut rust, 16));

    // A clone continues exactly like the original from the same state.
    let (mut ctx, mut pos) = primed(&model);
    let mut original = chain(5);
    original.sample(&mut ctx, -1).unwrap();
    let mut copy = original.try_clone().unwrap();
    for _ in 0..8 {
        let t = original.sample(&mut ctx, -1).unwrap();
        assert_eq!(copy.sample(&mut ctx, -1).unwrap(), t);
        step(&mut ctx, t, pos);
        pos += 1;
    }
    // RustDist refuses to clone: an error, and the original still works.
    assert!(matches!(rust.try_clone(), Err(Error::CustomSampler { .. })));
    assert!(rust.sample(&mut ctx, -1).is_ok());
}

#[test]
fn a_chain_must_still_end_in_a_selector() {
    let model = common::dense();
    let r = SamplerChain::builder(model.vocab())
        .greedy()
        .custom(TopKTemp { k: 1, temp: 1.0 })
        .build();
    assert!(matches!(r, Err(Error::ChainWithoutSelector)));
    // Infill and adaptive-p are offered, build and sample.
    let (mut ctx, _) = primed(&model);
    let mut infill = SamplerChain::builder(model.vocab())
        .top_k(20)
        .infill()
        .dist(1)
        .build()
        .unwrap();
    assert!(infill.sample(&mut ctx, -1).is_ok());
    let mut ap = SamplerChain::builder(model.vocab())
        .min_p(0.05, 1)
        .adaptive_p(0.5, 0.9, 3)
        .build()
        .unwrap();
    assert!(ap.sample(&mut ctx, -1).is_ok());
    assert!(
        SamplerChain::builder(model.vocab())
            .adaptive_p(f32::NAN, 0.9, 3)
            .build()
            .is_err()
    );
}
