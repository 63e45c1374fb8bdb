//! Number text as upstream's C++ prints it, so output matches byte for byte.

/// `std::to_string(double)`, i.e. `printf("%f")`: six decimals.
pub fn fixed6(x: f64) -> String {
    fixed(x, 6)
}

/// `printf("%.<decimals>f")`, including C's `nan` and `inf`.
pub fn fixed(x: f64, decimals: usize) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    format!("{x:.decimals$}")
}

/// A double written to a C++ stream with default settings, i.e. `printf("%g")`
/// with six significant digits: `6863.1`, `120.038`, `1.23457e+06`.
pub fn general6(x: f64) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // The exponent after rounding to six significant digits.
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.abs());
    }
    let decimals = usize::try_from(5 - exp).unwrap_or(0);
    strip_zeros(&format!("{x:.decimals$}")).to_owned()
}

/// Drops trailing zeros of a decimal fraction, and the point if nothing is left.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// C's spelling of NaN and the infinities.
fn non_finite(x: f64) -> Option<String> {
    if x.is_nan() {
        Some(if x.is_sign_negative() { "-nan" } else { "nan" }.to_owned())
    } else if x.is_infinite() {
        Some(if x < 0.0 { "-inf" } else { "inf" }.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed() {
        assert_eq!(fixed6(7100.002165), "7100.002165");
        assert_eq!(fixed6(0.5), "0.500000");
        assert_eq!(fixed6(f64::NAN), "nan");
    }

    #[test]
    fn general() {
        for (x, want) in [
            (6863.0998, "6863.1"),
            (7147.5512, "7147.55"),
            (120.0381, "120.038"),
            (117.4642, "117.464"),
            (100.0, "100"),
            (0.5, "0.5"),
            (0.0001234567, "0.000123457"),
            (0.00001234567, "1.23457e-05"),
            (999999.6, "1e+06"),
            (1234567.0, "1.23457e+06"),
            (123456.0, "123456"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(general6(x), want, "{x}");
        }
    }
}
