//! iCalendar (RFC 5545) documents: the days their events cover.
//!
//! Parsing is the `icalendar` crate's; recurrences (`RRULE`) are expanded by
//! the `rrule` crate. Only dates matter: an all-day event (`DTSTART;VALUE=DATE`)
//! covers its start date up to its (exclusive) `DTEND` date; a timed event
//! covers the dates from its start to its end, in its own time zone.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use icalendar::{CalendarComponent, CalendarDateTime, Component, DatePerhapsTime};
use rrule::RRuleSet;

/// The most occurrences one recurring event may expand to.
const MAX_OCCURRENCES: u16 = 5_000;
/// The longest event, in days.
const MAX_EVENT_DAYS: i64 = 366;

/// The days of a document and the range they are known for.
#[derive(Debug, Default)]
pub(super) struct Expanded {
    pub(super) days: Vec<(NaiveDate, String)>,
    /// First and last day covered: the first event's start to the last day
    /// expanded (`horizon` when a recurrence has no end).
    pub(super) range: Option<(NaiveDate, NaiveDate)>,
}

fn date_of(value: &DatePerhapsTime) -> (NaiveDate, Option<NaiveDateTime>) {
    match value {
        DatePerhapsTime::Date(d) => (*d, None),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => {
            (t.date_naive(), Some(t.naive_utc()))
        }
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, .. }) => {
            (date_time.date(), Some(*date_time))
        }
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(t)) => (t.date(), Some(*t)),
    }
}

/// Parses `P3D`, `P1W`, `PT36H`-style durations into whole days covered (at least 1).
fn duration_days(text: &str) -> Option<i64> {
    let rest = text.trim().strip_prefix('P')?;
    let (date_part, time_part) = rest.split_once('T').unwrap_or((rest, ""));
    let mut days = 0i64;
    let mut num = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            days += match c {
                'W' => n * 7,
                'D' => n,
                _ => return None,
            };
        }
    }
    let mut seconds = 0i64;
    for c in time_part.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            seconds += match c {
                'H' => n * 3600,
                'M' => n * 60,
                'S' => n,
                _ => return None,
            };
        }
    }
    Some(days + (seconds + 86_399) / 86_400)
}

/// How many dates an event starting on `start` covers.
fn span_days(event: &icalendar::Event, start: NaiveDate, start_time: Option<NaiveDateTime>) -> i64 {
    if let Some(end) = event.get_end() {
        let (end_date, end_time) = date_of(&end);
        let span = match (start_time, end_time) {
            // DTEND of an all-day event is exclusive.
            (None, _) => (end_date - start).num_days(),
            // A timed event ending at midnight does not cover that day.
            (Some(_), Some(t)) if t.time() == chrono::NaiveTime::MIN => {
                (end_date - start).num_days()
            }
            (Some(_), _) => (end_date - start).num_days() + 1,
        };
        return span.max(1);
    }
    event
        .property_value("DURATION")
        .and_then(duration_days)
        .unwrap_or(1)
        .max(1)
}

/// The dates of a property list such as `EXDATE;VALUE=DATE:20261224,20261231`.
fn listed_dates(event: &icalendar::Event, key: &str) -> Vec<NaiveDate> {
    event
        .multi_properties()
        .get(key)
        .into_iter()
        .flatten()
        .flat_map(|p| p.value().split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|v| NaiveDate::parse_from_str(v.get(..8).unwrap_or(""), "%Y%m%d").ok())
        .collect()
}

/// `UNTIL` in the form `rrule` accepts with a UTC `DTSTART`.
fn normalise_rule(rule: &str) -> String {
    rule.split(';')
        .map(|part| match part.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("UNTIL") => {
                let v = v.trim();
                if v.len() == 8 {
                    format!("UNTIL={v}T235959Z")
                } else if v.ends_with('Z') {
                    format!("UNTIL={v}")
                } else {
                    format!("UNTIL={v}Z")
                }
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The start dates of `rule` from `start` through `horizon`, and whether it is unbounded.
fn occurrences(
    rule: &str,
    start: NaiveDate,
    horizon: NaiveDate,
) -> Result<(Vec<NaiveDate>, bool), String> {
    let unbounded = !rule.split(';').any(|p| {
        p.split_once('=').is_some_and(|(k, _)| {
            k.eq_ignore_ascii_case("UNTIL") || k.eq_ignore_ascii_case("COUNT")
        })
    });
    let text = format!(
        "DTSTART:{}T000000Z\nRRULE:{}",
        start.format("%Y%m%d"),
        normalise_rule(rule)
    );
    let set: RRuleSet = text.parse().map_err(|e| format!("RRULE {rule:?}: {e}"))?;
    let before = horizon
        .succ_opt()
        .unwrap_or(horizon)
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().with_timezone(&rrule::Tz::UTC))
        .ok_or_else(|| "horizon out of range".to_string())?;
    let result = set.before(before).all(MAX_OCCURRENCES);
    if result.limited && result.dates.len() >= usize::from(MAX_OCCURRENCES) {
        return Err(format!(
            "RRULE {rule:?} has more than {MAX_OCCURRENCES} occurrences before {horizon}"
        ));
    }
    Ok((
        result.dates.iter().map(|d| d.date_naive()).collect(),
        unbounded,
    ))
}

/// Expands the events of `text` through `horizon`.
pub(super) fn expand(text: &str, horizon: NaiveDate) -> Result<Expanded, String> {
    let calendar: icalendar::Calendar = text.parse().map_err(|e: String| {
        format!(
            "not an iCalendar document: {}",
            e.lines().next().unwrap_or("")
        )
    })?;
    let mut out = Expanded::default();
    let mut first: Option<NaiveDate> = None;
    let mut last: Option<NaiveDate> = None;
    let mut events = 0usize;
    for component in calendar.components.iter() {
        let CalendarComponent::Event(event) = component else {
            continue;
        };
        events += 1;
        if event
            .property_value("STATUS")
            .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
        {
            continue;
        }
        let uid = event.get_uid().unwrap_or("");
        let Some(start) = event.get_start() else {
            return Err(format!("event {uid:?} has no DTSTART"));
        };
        let (start_date, start_time) = date_of(&start);
        let span = span_days(event, start_date, start_time);
        if span > MAX_EVENT_DAYS {
            return Err(format!(
                "event {uid:?} spans {span} days; at most {MAX_EVENT_DAYS}"
            ));
        }
        let summary = event.get_summary().unwrap_or("calendar event").to_string();
        let mut starts = vec![start_date];
        let mut unbounded = false;
        if let Some(rule) = event.property_value("RRULE") {
            let (dates, open) = occurrences(rule, start_date, horizon)
                .map_err(|m| format!("event {uid:?}: {m}"))?;
            // DTSTART always counts as the first occurrence (RFC 5545 3.8.5.3).
            starts.extend(dates.into_iter().filter(|d| *d != start_date));
            unbounded = open;
        }
        starts.extend(listed_dates(event, "RDATE"));
        let excluded = listed_dates(event, "EXDATE");
        starts.retain(|d| !excluded.contains(d));
        for s in starts {
            first = Some(first.map_or(s, |f| f.min(s)));
            for offset in 0..span {
                let day = s + TimeDelta::days(offset);
                if day > horizon {
                    break;
                }
                last = Some(last.map_or(day, |l| l.max(day)));
                out.days.push((day, summary.clone()));
            }
        }
        if unbounded {
            last = Some(last.map_or(horizon, |l| l.max(horizon)));
        }
    }
    if events == 0 {
        return Err("the document has no VEVENT".to_string());
    }
    out.range = first.zip(last);
    Ok(out)
}
