//! Averages and standard deviations of the repetitions, as upstream computes them.

/// Mean of nanosecond samples, truncated to an integer as upstream's `avg<uint64_t>`
/// does (0 for no samples).
pub fn avg_ns(samples: &[u64]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    u64::try_from(sum / samples.len() as u128).unwrap_or(u64::MAX)
}

/// Sample standard deviation of nanosecond samples with upstream's integer
/// formula: `sqrt(Σx²/(n-1) - mean²·n/(n-1))`, each division truncating and
/// `mean` the truncated average; 0 for fewer than two samples.
///
/// Upstream evaluates this in `uint64_t`, which wraps once Σx² passes 1.8e19
/// (samples of a few seconds); the same steps are done here in 128 bits, so the
/// result equals upstream's wherever upstream's does not wrap.
pub fn stddev_ns(samples: &[u64]) -> u64 {
    let n = samples.len() as u128;
    if n <= 1 {
        return 0;
    }
    let mean = u128::from(avg_ns(samples));
    let sq_sum: u128 = samples.iter().map(|&s| u128::from(s) * u128::from(s)).sum();
    let var = (sq_sum / (n - 1)).saturating_sub(mean * mean * n / (n - 1));
    (var as f64).sqrt() as u64
}

/// Tokens per second of each sample: `1e9 * n_tokens / ns`.
pub fn samples_ts(samples_ns: &[u64], n_tokens: i64) -> Vec<f64> {
    samples_ns
        .iter()
        .map(|&ns| 1e9 * n_tokens as f64 / ns as f64)
        .collect()
}

/// Mean of the per-sample rates (not the rate of the mean time), as upstream.
pub fn avg_f64(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation with upstream's one-pass formula, clamped at zero
/// where rounding makes the variance slightly negative (upstream prints `nan`).
pub fn stddev_f64(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() <= 1 {
        return 0.0;
    }
    let mean = avg_f64(v);
    let sq_sum: f64 = v.iter().map(|x| x * x).sum();
    (sq_sum / (n - 1.0) - mean * mean * n / (n - 1.0))
        .max(0.0)
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pp512 example of upstream's README: samples and the printed statistics.
    #[test]
    fn matches_upstream_readme_example() {
        let ns = [74_601_900, 71_632_900, 71_745_200, 71_952_700, 70_745_500];
        assert_eq!(avg_ns(&ns), 72_135_640);
        assert_eq!(stddev_ns(&ns), 1_453_752);
        let ts = samples_ts(&ns, 512);
        assert_eq!(format!("{:.6}", avg_f64(&ts)), "7100.002165");
        assert_eq!(format!("{:.6}", stddev_f64(&ts)), "140.341520");
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(avg_ns(&[]), 0);
        assert_eq!(stddev_ns(&[5]), 0);
        assert_eq!(stddev_f64(&[1.0]), 0.0);
        assert_eq!(stddev_f64(&[3.0, 3.0, 3.0]), 0.0);
        // Samples of ~10 s: Σx² overflows u64 but not here.
        let long = [10_000_000_000u64, 10_000_000_100, 9_999_999_900];
        assert_eq!(avg_ns(&long), 10_000_000_000);
        assert_eq!(stddev_ns(&long), 100);
    }
}
