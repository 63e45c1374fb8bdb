//! Value syntax shared by the test parameters: comma lists and integer ranges.
//!
//! Every test parameter takes a comma-separated list, and integer parameters also
//! take ranges, as upstream's `parse_int_range` does:
//!
//! - `first-last` is every integer from `first` to `last`;
//! - `first-last+step` adds `step` each time;
//! - `first-last*mult` multiplies by `mult` each time.
//!
//! A range whose `first` is above its `last` is empty, and one that does not
//! grow (`+0`, `*1`, `0-8*2`) is an error. Only `-ngl` accepts a negative
//! `first` (`-1` means "all layers").

/// Parses a comma list of integers and ranges (see the module docs).
///
/// `allow_negative` lets each item's first number carry a minus sign. An empty
/// string is an empty list and a trailing comma is allowed, as upstream.
pub fn parse_int_range(s: &str, allow_negative: bool) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (item, tail, ended_with_comma) = match rest.find(',') {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, "", false),
        };
        if item.is_empty() {
            return Err(format!("invalid range format in '{s}': empty item"));
        }
        expand_item(item, allow_negative, &mut out).map_err(|e| format!("{e} in '{s}'"))?;
        rest = tail;
        // "1," is accepted (trailing comma), ",1" and "1,,2" are not.
        if ended_with_comma && rest.starts_with(',') {
            return Err(format!("invalid range format in '{s}': empty item"));
        }
    }
    Ok(out)
}

/// Expands one `first[-last[(+|*)step]]` item into `out`.
fn expand_item(item: &str, allow_negative: bool, out: &mut Vec<i32>) -> Result<(), String> {
    let (negative, body) = match item.strip_prefix('-') {
        Some(b) if allow_negative => (true, b),
        _ => (false, item),
    };
    let (first_str, range) = match body.find('-') {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut first = parse_digits(first_str)?;
    if negative {
        first = -first;
    }
    let Some(range) = range else {
        out.push(first);
        return Ok(());
    };
    let (last_str, op, step_str) = match range.find(['+', '*']) {
        Some(i) => (
            &range[..i],
            range[i..].chars().next(),
            Some(&range[i + 1..]),
        ),
        None => (range, None, None),
    };
    let last = parse_digits(last_str)?;
    let step = match step_str {
        Some(s) => parse_digits(s)?,
        None => 1,
    };
    let mut i = first;
    while i <= last {
        out.push(i);
        let next = match op {
            Some('*') => i.checked_mul(step),
            _ => i.checked_add(step),
        };
        match next {
            // Past i32::MAX, hence past `last`: the range is complete.
            None => break,
            Some(n) if n <= i => return Err("invalid range (it does not grow)".into()),
            Some(n) => i = n,
        }
    }
    Ok(())
}

/// Parses a non-empty run of ASCII digits as an `i32`.
fn parse_digits(s: &str) -> Result<i32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid range format".into());
    }
    s.parse::<i32>()
        .map_err(|_| format!("number {s} out of range"))
}

/// Splits a comma list the way upstream's `string_split` does (no trailing empty
/// item), rejecting empty items because no parameter has a use for them.
pub fn split_list(s: &str) -> Result<Vec<&str>, String> {
    let s = s.strip_suffix(',').unwrap_or(s);
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&str> = s.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!("empty item in list '{s}'"));
    }
    Ok(items)
}

/// Parses a comma list of `0|1` flags (`true`/`false` are accepted too).
pub fn parse_bool_list(s: &str) -> Result<Vec<bool>, String> {
    split_list(s)?
        .into_iter()
        .map(|v| match v.trim() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(format!("invalid boolean '{other}' (expected 0 or 1)")),
        })
        .collect()
}

/// Parses a plain comma list of unsigned integers (no ranges), as `-fitt`/`-fitc` take.
pub fn parse_uint_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    split_list(s)?
        .into_iter()
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("invalid number '{v}'"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values_and_lists() {
        assert_eq!(parse_int_range("512", false).unwrap(), vec![512]);
        assert_eq!(parse_int_range("1,2,3", false).unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_int_range("1,2,", false).unwrap(), vec![1, 2]);
        assert_eq!(parse_int_range("", false).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_int_range("1-4", false).unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(
            parse_int_range("0-32+8", false).unwrap(),
            vec![0, 8, 16, 24, 32]
        );
        assert_eq!(parse_int_range("1-20+8", false).unwrap(), vec![1, 9, 17]);
        assert_eq!(
            parse_int_range("16-128*2", false).unwrap(),
            vec![16, 32, 64, 128]
        );
        assert_eq!(
            parse_int_range("1-3,8,10-30*2", false).unwrap(),
            vec![1, 2, 3, 8, 10, 20]
        );
        assert_eq!(parse_int_range("5-1", false).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn negative_only_when_allowed() {
        assert_eq!(parse_int_range("-1", true).unwrap(), vec![-1]);
        assert_eq!(parse_int_range("-2-1", true).unwrap(), vec![-2, -1, 0, 1]);
        assert!(parse_int_range("-1", false).is_err());
    }

    #[test]
    fn range_errors() {
        for bad in [
            "x",
            "1-",
            "1-x",
            "1-4+",
            "1-4+0",
            "1-4*1",
            "0-8*2",
            "1,,2",
            ",1",
            "1 2",
            "1-4/2",
            "1-4|2",
            "99999999999",
        ] {
            assert!(parse_int_range(bad, false).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn range_stops_at_i32_max() {
        let v = parse_int_range("2147483646-2147483647", false).unwrap();
        assert_eq!(v, vec![2147483646, 2147483647]);
        let v = parse_int_range("1073741824-2147483647*2", false).unwrap();
        assert_eq!(v, vec![1073741824]);
    }

    #[test]
    fn bool_and_uint_lists() {
        assert_eq!(
            parse_bool_list("0,1,true").unwrap(),
            vec![false, true, true]
        );
        assert!(parse_bool_list("yes").is_err());
        assert_eq!(parse_uint_list::<u64>("0,1024").unwrap(), vec![0, 1024]);
        assert!(parse_uint_list::<u32>("1-4").is_err());
        assert!(split_list("a,,b").is_err());
        assert_eq!(split_list("a,b,").unwrap(), vec!["a", "b"]);
    }
}
