//! Holiday calendars: the days of a `HolidayCalendar`, resolved from its sources.
//!
//! [`resolve`] turns a calendar's spec (explicit dates, built-in public
//! holidays, iCalendar documents) into [`CalendarDays`]: a set of local dates
//! with their names, the calendar's [`CalendarEffect`] and the range of dates
//! its sources cover. The schedule engine takes resolved calendars
//! ([`CompiledSchedule::compile_with_calendars`](crate::schedule::CompiledSchedule::compile_with_calendars))
//! and applies rule R7 of `docs/schedules.md`: each day is an all-day off (or
//! awake) window in the plan's time zone.
//!
//! ```
//! use hibernator_core::calendar::{resolve, NoDocuments};
//! use hibernator_core::types::{HolidayCalendar, HolidayCalendarSpec, PublicHolidays};
//! let calendar = HolidayCalendar::new("bavaria", HolidayCalendarSpec {
//!     public_holidays: vec![PublicHolidays { country: "DE".into(), subdivision: Some("BY".into()) }],
//!     dates: vec!["2026-12-24..2026-12-31".into()],
//!     ..Default::default()
//! });
//! let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
//! let days = resolve(&calendar, &NoDocuments, today).unwrap();
//! let epiphany = chrono::NaiveDate::from_ymd_opt(2027, 1, 6).unwrap();
//! assert!(days.contains(epiphany)); // Heilige Drei Könige, a Bavarian holiday
//! assert_eq!(days.name_of(epiphany), Some("Epiphany"));
//! ```

mod ical;
mod public;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use crate::schedule::ScheduleError;
use crate::types::{CalendarEffect, HolidayCalendar, HolidayCalendarSpec};

pub use public::{public_holiday_coverage, public_holidays};

/// How many years past today recurring iCalendar events without an end are expanded.
pub const ICAL_YEARS_AHEAD: i32 = 5;
/// The most days one calendar may hold (a guard against runaway recurrences).
pub const MAX_DAYS: usize = 20_000;
/// The longest explicit range (`YYYY-MM-DD..YYYY-MM-DD`), in days.
const MAX_RANGE_DAYS: i64 = 3_660;

/// Where a calendar's iCalendar documents are read from (a ConfigMap store in
/// the controller, the files given to the CLI, the API server in the plugin).
pub trait Documents {
    /// The text under `key` of ConfigMap `name` in `namespace`: `Ok(None)` when the
    /// ConfigMap or the key does not exist; `Err` with a reason when it cannot be read.
    fn document(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>, String>;
}

/// A [`Documents`] without any document (calendars without `ical` sources).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDocuments;

impl Documents for NoDocuments {
    fn document(&self, _: &str, _: &str, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// The days of one calendar, resolved from its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarDays {
    /// `namespace/name` of the `HolidayCalendar`.
    pub id: String,
    /// What the days do to a plan.
    pub effect: CalendarEffect,
    /// The days, each with a name (the holiday's, the event's summary, or `dates`).
    pub days: Arc<BTreeMap<NaiveDate, String>>,
    /// The dates every source of the calendar covers, inclusive: outside them a
    /// source may have days the calendar does not know (`None`: no source has any).
    pub coverage: Option<(NaiveDate, NaiveDate)>,
}

impl CalendarDays {
    /// True when `date` is a day of the calendar.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.days.contains_key(&date)
    }

    /// The name of `date`, when it is a day of the calendar.
    pub fn name_of(&self, date: NaiveDate) -> Option<&str> {
        self.days.get(&date).map(String::as_str)
    }

    /// The days within `[from, until]`, in order.
    pub fn between(
        &self,
        from: NaiveDate,
        until: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDate, &str)> + '_ {
        self.days
            .range(from..=until.max(from))
            .map(|(d, n)| (*d, n.as_str()))
    }

    /// A warning when `[from, until]` reaches outside the calendar's coverage,
    /// naming the calendar and the covered range.
    pub fn coverage_warning(&self, from: NaiveDate, until: NaiveDate) -> Option<String> {
        match self.coverage {
            None => Some(format!(
                "holidaycalendar {} has no days: none of its sources yields any",
                self.id
            )),
            Some((first, last)) if from < first || until > last => Some(format!(
                "holidaycalendar {} covers {first} to {last} only: days outside that range are not known{}",
                self.id,
                if until > last {
                    format!(" (e.g. holidays after {last})")
                } else {
                    String::new()
                }
            )),
            Some(_) => None,
        }
    }
}

/// Resolves `calendar` into its days. iCalendar documents are read from
/// `documents`; recurring events without an end are expanded through the end of
/// year `today + ICAL_YEARS_AHEAD`. Errors name the field of the calendar.
pub fn resolve(
    calendar: &HolidayCalendar,
    documents: &dyn Documents,
    today: NaiveDate,
) -> Result<CalendarDays, ScheduleError> {
    let name = calendar.metadata.name.as_deref().unwrap_or("<unnamed>");
    let namespace = calendar.metadata.namespace.as_deref().unwrap_or("default");
    resolve_spec(namespace, name, &calendar.spec, documents, today)
}

/// [`resolve`] for a spec with its namespace and name.
pub fn resolve_spec(
    namespace: &str,
    name: &str,
    spec: &HolidayCalendarSpec,
    documents: &dyn Documents,
    today: NaiveDate,
) -> Result<CalendarDays, ScheduleError> {
    let prefix = format!("holidaycalendar/{name}: spec");
    let mut days = BTreeMap::new();
    let mut coverage = Coverage::default();
    if spec.dates.is_empty() && spec.public_holidays.is_empty() && spec.ical.is_empty() {
        return Err(ScheduleError::new(
            prefix,
            "a calendar needs at least one source: dates, publicHolidays or ical",
        ));
    }
    if !spec.dates.is_empty() {
        let mut range: Option<(NaiveDate, NaiveDate)> = None;
        for (i, text) in spec.dates.iter().enumerate() {
            let (first, last) = parse_date_range(text)
                .map_err(|m| ScheduleError::new(format!("{prefix}.dates[{i}]"), m))?;
            range = Some(match range {
                None => (first, last),
                Some((a, b)) => (a.min(first), b.max(last)),
            });
            for day in first.iter_days().take_while(|d| *d <= last) {
                days.entry(day).or_insert_with(|| "listed day".to_string());
            }
        }
        coverage.add(range);
    }
    for (i, source) in spec.public_holidays.iter().enumerate() {
        let field = format!("{prefix}.publicHolidays[{i}]");
        let set = public_holidays(&source.country, source.subdivision.as_deref())
            .map_err(|(sub, m)| ScheduleError::new(format!("{field}.{sub}"), m))?;
        coverage.add(Some(set.years));
        for (day, holiday) in set.days {
            days.entry(day).or_insert(holiday);
        }
    }
    for (i, source) in spec.ical.iter().enumerate() {
        let field = format!("{prefix}.ical[{i}].configMapRef");
        let r = &source.config_map_ref;
        let text = documents
            .document(namespace, &r.name, &r.key)
            .map_err(|m| ScheduleError::new(&field, m))?
            .ok_or_else(|| {
                ScheduleError::new(
                    &field,
                    format!(
                        "ConfigMap {namespace}/{} has no key {:?} (or does not exist)",
                        r.name, r.key
                    ),
                )
            })?;
        let horizon = NaiveDate::from_ymd_opt(today.year() + ICAL_YEARS_AHEAD, 12, 31)
            .unwrap_or(NaiveDate::MAX);
        let expanded = ical::expand(&text, horizon)
            .map_err(|m| ScheduleError::new(format!("{field} (ConfigMap {})", r.name), m))?;
        coverage.add(expanded.range);
        for (day, summary) in expanded.days {
            days.entry(day).or_insert(summary);
        }
        if days.len() > MAX_DAYS {
            break;
        }
    }
    for (i, text) in spec.exclude.iter().enumerate() {
        let (first, last) = parse_date_range(text)
            .map_err(|m| ScheduleError::new(format!("{prefix}.exclude[{i}]"), m))?;
        let listed: Vec<NaiveDate> = days.range(first..=last).map(|(d, _)| *d).collect();
        for day in listed {
            days.remove(&day);
        }
    }
    if days.len() > MAX_DAYS {
        return Err(ScheduleError::new(
            prefix,
            format!(
                "the calendar has more than {MAX_DAYS} days; shorten its ranges or recurrences"
            ),
        ));
    }
    Ok(CalendarDays {
        id: format!("{namespace}/{name}"),
        effect: spec.effect,
        days: Arc::new(days),
        coverage: coverage.range(),
    })
}

/// The intersection of the sources' ranges.
#[derive(Default)]
struct Coverage {
    any: bool,
    range: Option<(NaiveDate, NaiveDate)>,
}

impl Coverage {
    /// Adds a source's range, widened to whole years (a list of a year's days
    /// covers that year, also after its last day).
    fn add(&mut self, source: Option<(NaiveDate, NaiveDate)>) {
        let Some((a, b)) = source else { return };
        let a = NaiveDate::from_ymd_opt(a.year(), 1, 1).unwrap_or(a);
        let b = NaiveDate::from_ymd_opt(b.year(), 12, 31).unwrap_or(b);
        self.range = Some(match (self.any, self.range) {
            (false, _) => (a, b),
            (true, Some((x, y))) => (x.max(a), y.min(b)),
            (true, None) => return,
        });
        self.any = true;
    }

    fn range(&self) -> Option<(NaiveDate, NaiveDate)> {
        self.range.filter(|(a, b)| a <= b)
    }
}

/// Parses `YYYY-MM-DD` or an inclusive `YYYY-MM-DD..YYYY-MM-DD`.
pub fn parse_date_range(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|e| format!("{:?} is not a date YYYY-MM-DD ({e})", s.trim()))
    };
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let d = parse(text)?;
            (d, d)
        }
    };
    if last < first {
        return Err(format!(
            "{text:?}: the range ends before it starts; write FIRST..LAST"
        ));
    }
    if (last - first).num_days() > MAX_RANGE_DAYS {
        return Err(format!(
            "{text:?}: a range may span at most {MAX_RANGE_DAYS} days"
        ));
    }
    Ok((first, last))
}

/// Finds the resolved calendar for each of `refs` (a plan's `spec.schedule.calendars`),
/// in order: `lookup(namespace, name)` returns `None` when the calendar does not
/// exist, or the result of resolving it. `namespace` is the plan's. The first
/// missing or unresolvable calendar is an error naming the plan's field.
pub fn match_refs<C>(
    refs: &[crate::types::ObjectRef],
    namespace: &str,
    mut lookup: impl FnMut(&str, &str) -> Option<Result<C, ScheduleError>>,
) -> Result<Vec<C>, ScheduleError> {
    refs.iter()
        .enumerate()
        .map(|(i, r)| {
            let ns = r.namespace.as_deref().unwrap_or(namespace);
            let field = format!("spec.schedule.calendars[{i}]");
            match lookup(ns, &r.name) {
                None => Err(ScheduleError::new(
                    field,
                    format!("HolidayCalendar {ns}/{} does not exist", r.name),
                )),
                Some(Err(e)) => Err(ScheduleError::new(
                    field,
                    format!("HolidayCalendar {ns}/{}: {e}", r.name),
                )),
                Some(Ok(c)) => Ok(c),
            }
        })
        .collect()
}

/// Splits a plan's resolved calendars (one per `schedule.calendars` entry, in
/// order) into the schedule to compile (listing only the usable ones), their days,
/// and the problems of the others. A plan whose calendar cannot be used still
/// follows its windows and exceptions; the caller reports the problems.
pub fn usable(
    schedule: &crate::types::Schedule,
    resolved: impl IntoIterator<Item = Result<CalendarDays, ScheduleError>>,
) -> (
    crate::types::Schedule,
    Vec<CalendarDays>,
    Vec<ScheduleError>,
) {
    let mut kept = schedule.clone();
    kept.calendars.clear();
    let mut days = Vec::new();
    let mut problems = Vec::new();
    let mut resolved = resolved.into_iter();
    for (i, r) in schedule.calendars.iter().enumerate() {
        match resolved.next() {
            Some(Ok(c)) => {
                kept.calendars.push(r.clone());
                days.push(c);
            }
            Some(Err(e)) => problems.push(e),
            None => problems.push(ScheduleError::new(
                format!("spec.schedule.calendars[{i}]"),
                format!("HolidayCalendar {:?} was not resolved", r.name),
            )),
        }
    }
    (kept, days, problems)
}
