//! Durations on the command line: `30s`, `5m`, `1h30m`, `500ms`, ISO 8601 (`PT5M`), or a plain
//! number of seconds. Parsed by jiff (its "friendly" and ISO 8601 formats), not by hand; a plain
//! number stays accepted as seconds, as the flags always took it.

use std::time::Duration;

/// Parses a non-negative duration for a flag.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {s:?}: too large"));
    }
    let signed: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("invalid duration {s:?} (use e.g. 30s, 5m, 1h): {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("invalid duration {s:?}: negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_take_units_iso_and_plain_seconds() {
        let ok: &[(&str, Duration)] = &[
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("PT5M", Duration::from_secs(300)),
            ("7", Duration::from_secs(7)),
            (" 10s ", Duration::from_secs(10)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
        for bad in ["", "s", "5x", "-5s", "99999999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
