//! Durations given on the command line as (fractional) seconds.

use std::time::Duration;

/// Parses `1.5` as one and a half seconds; refuses negative, non-finite and absurdly large
/// values with a message naming what is accepted.
pub fn parse(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value.trim().parse().map_err(|_| format!("`{value}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{value}` is not a usable number of seconds: use a value from 0 to about 1.8e19"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_or_say_why_not() {
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["-1", "1e20", "NaN", "inf"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e, format!("`{bad}` is not a usable number of seconds: use a value from 0 to about 1.8e19"));
        }
        assert_eq!(parse("soon").unwrap_err(), "`soon` is not a number of seconds");
    }
}
