//! Value distributions for tensors, chosen to keep activations finite and
//! MoE routing spread out.

use llamacpp_ggml::rng::SplitMix64;

/// How a tensor's values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Zero-mean, approximately normal with standard deviation `std`.
    ///
    /// Matrices use `std = 1 / sqrt(fan_in)` so every projection keeps unit
    /// scale; the MoE router uses the same, which gives logits of about unit
    /// scale after the RMS norm, so top-k routing varies from token to token.
    Normal {
        /// Standard deviation.
        std: f32,
    },
    /// `1 + noise * N(0, 1)`: norm weights, stored near 1 as conversions do.
    NearOne {
        /// Standard deviation of the noise.
        noise: f32,
    },
    /// Uniform in `[lo, hi)`: `ssm_a` (negative decay rates) and the `ssm_dt`
    /// bias (negative, so softplus(dt) starts small).
    Uniform {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
}

impl Init {
    /// `Normal` with `std = 1 / sqrt(fan_in)`.
    #[must_use]
    pub fn fan_in(fan_in: u64) -> Self {
        Self::Normal {
            std: (1.0 / (fan_in.max(1) as f64).sqrt()) as f32,
        }
    }

    /// Fill `out` from `rng`.
    pub fn fill(&self, rng: &mut SplitMix64, out: &mut [f32]) {
        match *self {
            Self::Normal { std } => out.iter_mut().for_each(|v| *v = rng.next_normal() * std),
            Self::NearOne { noise } => out
                .iter_mut()
                .for_each(|v| *v = 1.0 + rng.next_normal() * noise),
            Self::Uniform { lo, hi } => out
                .iter_mut()
                .for_each(|v| *v = lo + (hi - lo) * rng.next_unit()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range() {
        let mut out = vec![0.0; 1000];
        Init::Uniform {
            lo: -16.0,
            hi: -1.0,
        }
        .fill(&mut SplitMix64::new(3), &mut out);
        assert!(out.iter().all(|v| (-16.0..-1.0).contains(v)));
    }

    #[test]
    fn fan_in_scales_std() {
        assert_eq!(Init::fan_in(4), Init::Normal { std: 0.5 });
        let mut out = vec![0.0; 10_000];
        Init::fan_in(100).fill(&mut SplitMix64::new(9), &mut out);
        let rms = (out.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 10_000.0).sqrt();
        assert!((rms - 0.1).abs() < 0.005, "rms {rms}");
    }
}
