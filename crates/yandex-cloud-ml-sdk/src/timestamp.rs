//! Timestamps in serde as RFC 3339 text (`2026-12-02T09:34:19.5Z`), as the cloud's JSON and
//! every other tool writes them, instead of serde's `{"secs_since_epoch", …}` for
//! `SystemTime`. Reading accepts both, so JSON written by earlier versions still reads.
//! Used as `#[serde(with = "crate::timestamp")]` on `Option<SystemTime>` fields.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `t` as RFC 3339 in UTC, with as many fraction digits as it needs (none, 3, 6 or 9).
pub(crate) fn format(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 { (-s, 0) } else { (-s - 1, 1_000_000_000 - n) }
        }
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let fraction = match nanos {
        0 => String::new(),
        n if n % 1_000_000 == 0 => format!(".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => format!(".{:06}", n / 1_000),
        n => format!(".{n:09}"),
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}{fraction}Z")
}

/// Reads RFC 3339 (`Z` or an offset, any fraction up to nanoseconds).
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u32>().ok();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = f[..digits].parse::<u32>().ok()? * 10u32.pow(9 - digits as u32);
        rest = &f[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (rest.get(1..3)?.parse::<i64>().ok()?, rest.get(4..6)?.parse::<i64>().ok()?);
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset;
    let since = |s: i64| Duration::new(s.unsigned_abs(), 0);
    if secs >= 0 {
        UNIX_EPOCH.checked_add(since(secs) + Duration::from_nanos(u64::from(nanos)))
    } else {
        UNIX_EPOCH.checked_sub(since(secs))?.checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

pub(crate) fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(*t)),
        None => s.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    /// RFC 3339 text, or the `SystemTime` form of serde that earlier versions wrote.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Epoch { secs_since_epoch: u64, nanos_since_epoch: u32 },
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Text(text)) => {
            parse(&text).map(Some).ok_or_else(|| D::Error::custom(format!("`{text}` is not an RFC 3339 timestamp")))
        }
        Some(Either::Epoch { secs_since_epoch, nanos_since_epoch }) => {
            Ok(UNIX_EPOCH.checked_add(Duration::new(secs_since_epoch, nanos_since_epoch)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_as_rfc3339() {
        let t = UNIX_EPOCH + Duration::new(1_796_204_059, 500_000_000);
        assert_eq!(format(t), "2026-12-02T09:34:19.500Z");
        assert_eq!(parse("2026-12-02T09:34:19.500Z"), Some(t));
        assert_eq!(parse("2026-12-02T12:34:19.5+03:00"), Some(t));
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(format(UNIX_EPOCH + Duration::new(951_782_400, 1)), "2000-02-29T00:00:00.000000001Z");
        assert_eq!(format(UNIX_EPOCH - Duration::from_secs(1)), "1969-12-31T23:59:59Z");
        for day in [0i64, 59, 365, 11_016, 20_000, -1, -719_468] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        for bad in ["", "2026-12-02", "2026-13-02T00:00:00Z", "2026-12-02T00:00:00", "2026-12-02T00:00:00.Z"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // Serde: text out; text and the older epoch form in.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "crate::timestamp")]
            at: Option<SystemTime>,
        }
        let json = serde_json::to_string(&T { at: Some(t) }).unwrap();
        assert_eq!(json, r#"{"at":"2026-12-02T09:34:19.500Z"}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), T { at: Some(t) });
        let old = r#"{"at":{"secs_since_epoch":1796204059,"nanos_since_epoch":500000000}}"#;
        assert_eq!(serde_json::from_str::<T>(old).unwrap(), T { at: Some(t) });
        assert_eq!(serde_json::from_str::<T>(r#"{"at":null}"#).unwrap(), T { at: None });
        assert!(serde_json::from_str::<T>(r#"{"at":"yesterday"}"#).unwrap_err().to_string().contains("RFC 3339"));
    }
}
