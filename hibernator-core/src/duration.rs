//! Human durations such as `30m`, `1h30m` or `90s`, as used by `timeout` and `leadTime`.

use std::time::Duration;

/// Parses a duration written as in Go or Kubernetes (`1h30m`, `45s`, `2h`).
///
/// A bare number without a unit is rejected so that `30` is never silently
/// read as 30 seconds when the user meant minutes.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("empty duration: write e.g. 30m or 1h30m".to_string());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration {trimmed:?} has no unit: write e.g. {trimmed}s or {trimmed}m"
        ));
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| format!("invalid duration {trimmed:?}: {e} (write e.g. 30m or 1h30m)"))
}

/// Formats a duration compactly (`1h30m`, `45s`, `6d10h`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn rejects_unitless_and_garbage() {
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(
            format_duration(Duration::from_secs(6 * 86_400 + 10 * 3600)),
            "6d10h"
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
