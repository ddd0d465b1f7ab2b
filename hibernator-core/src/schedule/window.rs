//! Parsing of `HH:MM` times and day names, and wall-clock → UTC resolution (R4).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Minutes in a day; `24:00` parses to this value.
pub(crate) const DAY_MINUTES: u16 = 1440;

/// The day names accepted in `daysOfWeek`, Monday first.
pub(crate) const DAY_NAMES: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Parses a strict `HH:MM` time into minutes after midnight.
///
/// `allow_24` admits `24:00` (the end of the day), which is only valid as a window end.
pub(crate) fn parse_hhmm(text: &str, allow_24: bool) -> Result<u16, String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    if !well_formed {
        return Err(format!(
            "invalid time {text:?}: write HH:MM with two-digit hours and minutes, e.g. 07:30"
        ));
    }
    let hours = u16::from(bytes[0] - b'0') * 10 + u16::from(bytes[1] - b'0');
    let minutes = u16::from(bytes[3] - b'0') * 10 + u16::from(bytes[4] - b'0');
    if hours == 24 && minutes == 0 {
        return if allow_24 {
            Ok(DAY_MINUTES)
        } else {
            Err("24:00 is not a valid start: use 00:00 on the following day".to_string())
        };
    }
    if hours > 23 || minutes > 59 {
        let range = if allow_24 {
            "00:00–24:00"
        } else {
            "00:00–23:59"
        };
        return Err(format!("invalid time {text:?}: must be within {range}"));
    }
    Ok(hours * 60 + minutes)
}

/// Parses a day name (`MON`…`SUN`, upper case) into 0 (Monday) … 6 (Sunday).
pub(crate) fn parse_day(text: &str) -> Result<u8, String> {
    DAY_NAMES
        .iter()
        .position(|d| *d == text)
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!(
                "unknown day {text:?}: use the upper-case names MON, TUE, WED, THU, FRI, SAT or SUN"
            )
        })
}

/// Formats minutes after midnight as `HH:MM`.
pub(crate) fn format_minutes(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Resolves a wall-clock time in `tz` to an instant following R4: a time in a DST gap
/// becomes the first instant after the gap, an ambiguous time its first occurrence.
pub(crate) fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(dt) => dt.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// The local wall-clock time of `at` in `tz`.
pub(crate) fn to_local(tz: Tz, at: DateTime<Utc>) -> NaiveDateTime {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    at.naive_utc() + Duration::seconds(i64::from(offset.local_minus_utc()))
}

/// The instant at which the gap containing the nonexistent `local` time ends: the
/// smallest instant whose local time is later than `local` (a binary search over
/// whole seconds; gaps are rare, so this is off the hot path).
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let around = local.and_utc().timestamp();
    let local_of = |secs: i64| DateTime::from_timestamp(secs, 0).map(|at| to_local(tz, at));
    // local(lo) < local < local(hi); the gap lies in between.
    let mut lo = around - 27 * 3600;
    let mut hi = around + 27 * 3600;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match local_of(mid) {
            Some(l) if l > local => hi = mid,
            _ => lo = mid,
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How to turn minutes of one local day into instants, computed once per day.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DayMap {
    tz: Tz,
    midnight: NaiveDateTime,
    /// `Some(offset seconds)` when the whole day has one UTC offset.
    uniform: Option<i32>,
}

impl DayMap {
    /// The map of local day `date` in `tz`.
    pub(crate) fn new(tz: Tz, date: NaiveDate) -> Self {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        let uniform = match tz.from_local_datetime(&midnight) {
            chrono::LocalResult::Single(dt) => {
                let offset = dt.offset().fix().local_minus_utc();
                let next_midnight =
                    midnight + Duration::days(1) - Duration::seconds(i64::from(offset));
                let offset_at_end = tz.offset_from_utc_datetime(&next_midnight).fix();
                (offset_at_end.local_minus_utc() == offset).then_some(offset)
            }
            _ => None,
        };
        Self {
            tz,
            midnight,
            uniform,
        }
    }

    /// The instant of `minute` (0‥1439) of this day, resolved with R4.
    pub(crate) fn at(&self, minute: u16) -> DateTime<Utc> {
        let local = self.midnight + Duration::minutes(i64::from(minute));
        match self.uniform {
            Some(offset) => (local - Duration::seconds(i64::from(offset))).and_utc(),
            None => resolve_local(self.tz, local),
        }
    }
}

/// Weekday index (0 = Monday) of a local date.
pub(crate) fn weekday(date: NaiveDate) -> usize {
    date.weekday().num_days_from_monday() as usize
}
