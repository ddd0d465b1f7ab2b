//! `--until`: an RFC 3339 instant or a duration from now.

use chrono::{DateTime, Utc};

use super::PluginError;

/// Parses `--until`: an RFC 3339 instant (any offset) or a duration such as
/// `2h` or `1h30m`, counted from `now`. The result must lie after `now`.
pub fn parse_until(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, PluginError> {
    let invalid = |message: String| PluginError::InvalidUntil {
        value: value.to_string(),
        message,
    };
    let at = match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let duration = hibernator_core::duration::parse_duration(value).map_err(|e| {
                invalid(format!(
                    "expected an RFC 3339 instant such as 2026-11-23T20:00:00Z or a duration such as 2h ({e})"
                ))
            })?;
            let delta = chrono::Duration::from_std(duration)
                .map_err(|_| invalid("duration too large".to_string()))?;
            now.checked_add_signed(delta)
                .ok_or_else(|| invalid("duration too large".to_string()))?
        }
    };
    if at <= now {
        return Err(invalid(format!(
            "{} is not in the future",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_kube::controls::format_instant;

    fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn durations_count_from_now() {
        let at = parse_until("2h", now()).unwrap();
        assert_eq!(at, now() + chrono::Duration::hours(2));
        let at = parse_until("1h30m", now()).unwrap();
        assert_eq!(at, now() + chrono::Duration::minutes(90));
    }

    #[test]
    fn rfc3339_with_offset_is_normalised_to_utc() {
        let at = parse_until("2026-11-23T20:00:00+01:00", now()).unwrap();
        assert_eq!(format_instant(at), "2026-11-23T19:00:00Z");
    }

    #[test]
    fn past_and_garbage_are_rejected_with_the_value() {
        let e = parse_until("2026-11-22T20:00:00Z", now()).unwrap_err();
        assert!(e.to_string().contains("not in the future"), "{e}");
        let e = parse_until("tomorrow", now()).unwrap_err();
        assert!(e.to_string().contains("\"tomorrow\""), "{e}");
        assert!(parse_until("30", now()).is_err());
    }
}
