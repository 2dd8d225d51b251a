//! Durations given on the command line: (fractional) seconds, or a number with a unit
//! (`500ms`, `30s`, `2m`, `1h`).

use std::time::Duration;

/// Parses `1.5` as one and a half seconds, `2m` as two minutes; refuses negative, non-finite
/// and absurdly large values with a message naming what is accepted.
pub fn parse(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let (number, scale) = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .into_iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, scale)))
        .unwrap_or((text, 1.0));
    let number: f64 = number.trim().parse().map_err(|_| {
        format!("`{value}` is not a duration: give seconds (`1.5`) or a number with ms, s, m or h (`2m`)")
    })?;
    Duration::try_from_secs_f64(number * scale)
        .map_err(|_| format!("`{value}` is not a usable duration: use a value from 0 to about 1.8e19 seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_or_say_why_not() {
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["-1", "1e20", "NaN", "inf", "-2m"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e, format!("`{bad}` is not a usable duration: use a value from 0 to about 1.8e19 seconds"));
        }
        assert_eq!(
            parse("soon").unwrap_err(),
            "`soon` is not a duration: give seconds (`1.5`) or a number with ms, s, m or h (`2m`)"
        );
    }
}
