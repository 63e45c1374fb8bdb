//! The one error measure that op tests, model tests and the bench's logit check share.

/// Normalised mean squared error of `out` against `reference`, as upstream's
/// `test-backend-ops` computes it: `Σ (out - ref)² / Σ ref²`, in f64.
///
/// A NaN anywhere gives infinity, so a broken kernel never passes a threshold. An all-zero
/// reference gives 0 when `out` is all zero too and infinity otherwise. Lengths must match;
/// extra values of the longer slice count as a difference from zero (a length mismatch is
/// never "equal").
///
/// ```
/// let e = llamacpp_ggml::nmse(&[1.0, 2.0], &[1.0, 2.5]);
/// assert!((e - 0.25 / 7.25).abs() < 1e-12);
/// ```
#[must_use]
pub fn nmse(out: &[f32], reference: &[f32]) -> f64 {
    let (mut err, mut norm) = (0f64, 0f64);
    let n = out.len().max(reference.len());
    for i in 0..n {
        let o = out.get(i).copied().map_or(0.0, f64::from);
        let r = reference.get(i).copied().map_or(0.0, f64::from);
        err += (o - r) * (o - r);
        norm += r * r;
    }
    if out.len() != reference.len() {
        return f64::INFINITY;
    }
    let v = if norm > 0.0 {
        err / norm
    } else if err == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    if v.is_nan() { f64::INFINITY } else { v }
}

/// The largest absolute difference between `a` and `b` (infinity on a NaN or on different
/// lengths).
///
/// ```
/// assert_eq!(llamacpp_ggml::max_abs_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
/// ```
#[must_use]
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).fold(0f64, |m, (&x, &y)| {
        let d = (f64::from(x) - f64::from(y)).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmse_is_relative_to_the_reference() {
        assert_eq!(nmse(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!((nmse(&[2.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-12);
        // Scaling both scales nothing.
        assert!((nmse(&[20.0, 0.0], &[10.0, 0.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn nmse_never_passes_broken_output() {
        assert_eq!(nmse(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(nmse(&[1.0], &[f32::NAN]), f64::INFINITY);
        assert_eq!(nmse(&[1.0, 2.0], &[1.0]), f64::INFINITY);
        assert_eq!(nmse(&[0.0, 1.0], &[0.0, 0.0]), f64::INFINITY);
        assert_eq!(nmse(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(nmse(&[], &[]), 0.0);
    }

    #[test]
    fn max_abs_diff_sees_nan_and_length() {
        assert_eq!(max_abs_diff(&[1.0, -3.0], &[1.5, 1.0]), 4.0);
        assert_eq!(max_abs_diff(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[1.0], &[]), f64::INFINITY);
    }
}
