//! One benchmark test on a loaded model, with upstream llama-bench's semantics:
//! prompt tests decode random tokens in `n_batch` chunks; generation tests
//! decode one token at a time with a synchronize after each; memory is cleared
//! before every repetition; depth is prefilled once and restored from saved state.

use std::time::Instant;

use llamacpp::{Batch, Context, Model, Token};
use llamacpp_bench_core::params::TestInstance;
use llamacpp_synth::rng::SplitMix64;

use crate::to_llama;
use crate::{Result, err};

/// Upstream's CPU mask syntax: hex digits, optional `0x`, the last digit for CPUs 0-3
/// (its lowest bit CPU 0), the one before it for CPUs 4-7, and so on.
pub fn parse_cpu_mask(hex: &str) -> Result<Vec<bool>> {
    let digits = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    let mut mask = Vec::with_capacity(digits.len() * 4);
    for c in digits.chars().rev() {
        let v = c
            .to_digit(16)
            .ok_or_else(|| format!("--cpu-mask {hex:?}: {c:?} is not a hex digit"))?;
        mask.extend((0..4).map(|bit| v >> bit & 1 == 1));
    }
    Ok(mask)
}

/// Deterministic token stream (upstream uses `rand()`; any uniform source does): the
/// workspace's one generator, synth's SplitMix64.
pub struct TokenRng(SplitMix64);

impl TokenRng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// The next id in `0..n` (0 when `n` is not positive).
    pub fn next(&mut self, n: i32) -> i32 {
        let n = u64::try_from(n).unwrap_or(0).max(1);
        // The remainder is below `n`, which came from an i32.
        i32::try_from(self.0.next_u64() % n).unwrap_or(0)
    }
}

/// The token counts of a test, checked once.
#[derive(Debug, Clone, Copy)]
struct Counts {
    n_prompt: u32,
    n_gen: u32,
    n_depth: u32,
    n_batch: u32,
}

impl Counts {
    fn of(inst: &TestInstance) -> Result<Self> {
        let count = |v: i32, what: &str| {
            u32::try_from(v).map_err(|_| format!("{what} must not be negative, got {v}"))
        };
        Ok(Self {
            n_prompt: count(inst.n_prompt, "-p")?,
            n_gen: count(inst.n_gen, "-n")?,
            n_depth: count(inst.n_depth, "-d")?,
            n_batch: count(inst.n_batch, "-b")?.max(1),
        })
    }
}

/// A loaded test: context created, depth prefilled and its state saved.
pub struct Prepared<'m> {
    ctx: Context<'m>,
    spec: Counts,
    depth_state: Option<Vec<u8>>,
    rng: TokenRng,
}

impl<'m> Prepared<'m> {
    /// Creates the context, prefills the depth once and warms up (unless `no_warmup`).
    pub fn new(model: &'m Model, inst: &TestInstance, no_warmup: bool) -> Result<Self> {
        let spec = Counts::of(inst)?;
        let ctx = Context::new(model, to_llama::context_params(inst)?).map_err(err)?;
        let mut p = Prepared {
            ctx,
            spec,
            depth_state: None,
            rng: TokenRng::new(42),
        };
        if spec.n_depth > 0 {
            p.prompt(spec.n_depth, 0)?;
            p.depth_state = Some(p.ctx.seq_state(0).map_err(err)?);
        }
        if !no_warmup {
            p.reset()?;
            if spec.n_prompt > 0 {
                p.prompt(spec.n_prompt.min(spec.n_batch), spec.n_depth)?;
            }
            if spec.n_gen > 0 {
                p.reset()?;
                p.generate(1, spec.n_depth)?;
            }
        }
        Ok(p)
    }

    fn reset(&mut self) -> Result<()> {
        self.ctx.clear_memory(false);
        if let Some(state) = &self.depth_state {
            self.ctx.set_seq_state(state, 0).map_err(err)?;
        }
        Ok(())
    }

    fn prompt(&mut self, n: u32, start: u32) -> Result<()> {
        let model = self.ctx.model();
        let vocab = model.vocab();
        let n_vocab = vocab.n_tokens();
        let mut done = 0u32;
        while done < n {
            let k = (n - done).min(self.spec.n_batch);
            let mut batch = Batch::new(k as usize, 1).map_err(err)?;
            for i in 0..k {
                let id = match (done + start == 0 && i == 0 && vocab.adds_bos(), vocab.bos()) {
                    (true, Some(bos)) => bos,
                    _ => vocab.token(self.rng.next(n_vocab)).map_err(err)?,
                };
                batch
                    .add(id, (start + done + i) as i32, &[0], i + 1 == k)
                    .map_err(err)?;
            }
            self.ctx.decode(&mut batch).map_err(err)?;
            done += k;
        }
        self.ctx.synchronize();
        Ok(())
    }

    fn generate(&mut self, n: u32, start: u32) -> Result<()> {
        let vocab = self.ctx.model().vocab();
        let n_vocab = vocab.n_tokens();
        let mut token: Token = match (vocab.adds_bos(), vocab.bos()) {
            (true, Some(bos)) => bos,
            _ => vocab.token(self.rng.next(n_vocab)).map_err(err)?,
        };
        let mut batch = Batch::new(1, 1).map_err(err)?;
        for i in 0..n {
            batch.clear();
            batch
                .add(token, (start + i) as i32, &[0], true)
                .map_err(err)?;
            self.ctx.decode(&mut batch).map_err(err)?;
            self.ctx.synchronize();
            token = vocab.token(self.rng.next(n_vocab)).map_err(err)?;
        }
        Ok(())
    }

    /// One timed repetition; returns nanoseconds.
    pub fn repetition(&mut self) -> Result<u64> {
        self.reset()?;
        let (np, ng, d) = (self.spec.n_prompt, self.spec.n_gen, self.spec.n_depth);
        let t0 = Instant::now();
        if np > 0 {
            self.prompt(np, d)?;
        }
        if ng > 0 {
            self.generate(ng, d + np)?;
        }
        Ok(t0.elapsed().as_nanos() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_mask;

    #[test]
    fn cpu_masks_read_as_upstream_reads_them() {
        assert_eq!(parse_cpu_mask("0x0").unwrap(), vec![false; 4]);
        let m = parse_cpu_mask("0x12").unwrap();
        let on: Vec<usize> = (0..m.len()).filter(|&i| m[i]).collect();
        assert_eq!(on, vec![1, 4]);
        assert_eq!(parse_cpu_mask("F").unwrap(), vec![true; 4]);
        assert!(parse_cpu_mask("0xz").is_err());
    }
}
