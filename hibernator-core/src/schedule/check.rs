//! Structural checks of schedules and exceptions, reported with field paths.

use crate::diag::Diagnostics;
use crate::duration::{format_duration, parse_duration};
use crate::types::{ExceptionType, OffHourWindow, Schedule, ScheduleExceptionSpec};

use super::window::{DAY_MINUTES, DAY_NAMES, format_minutes, parse_day, parse_hhmm};

/// Longest off stretch of a single window that passes without a warning, in minutes.
const LONG_OFF_WARN_MINUTES: u32 = 96 * 60;
/// Minutes in a week.
const WEEK_MINUTES: u32 = 7 * 1440;

/// Checks a plan's schedule: time zone and windows. `field` is the path of the
/// schedule, e.g. `spec.schedule`.
pub fn check_schedule(schedule: &Schedule, field: &str) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let tz_field = format!("{field}.timezone");
    if schedule.timezone.trim().is_empty() {
        diags.error(
            tz_field,
            "a time zone is required: use an IANA name such as Europe/Berlin",
        );
    } else if schedule.timezone.parse::<chrono_tz::Tz>().is_err() {
        diags.error(
            tz_field,
            format!(
                "unknown time zone {:?}: use an IANA name such as Europe/Berlin or America/New_York",
                schedule.timezone
            ),
        );
    }
    if schedule.off_hours.is_empty() {
        diags.warn(
            format!("{field}.offHours"),
            "no off-hours windows: the plan only hibernates while an extend or replace exception is active",
        );
    }
    diags.extend(check_windows(
        &schedule.off_hours,
        &format!("{field}.offHours"),
    ));
    let mut seen = std::collections::BTreeSet::new();
    for (i, calendar) in schedule.calendars.iter().enumerate() {
        let path = format!("{field}.calendars[{i}]");
        if calendar.name.trim().is_empty() {
            diags.error(
                format!("{path}.name"),
                "the name of a HolidayCalendar is required",
            );
        } else if !seen.insert((calendar.namespace.as_deref(), calendar.name.as_str())) {
            diags.warn(
                path,
                format!("HolidayCalendar {:?} is listed twice", calendar.name),
            );
        }
    }
    diags
}

/// Checks a list of windows. `field` is the path of the list, e.g. `spec.schedule.offHours`.
pub fn check_windows(windows: &[OffHourWindow], field: &str) -> Diagnostics {
    let mut diags = Diagnostics::new();
    for (i, window) in windows.iter().enumerate() {
        check_window(window, &format!("{field}[{i}]"), &mut diags);
    }
    diags
}

fn check_window(window: &OffHourWindow, path: &str, diags: &mut Diagnostics) {
    let start = parse_hhmm(&window.start, false)
        .map_err(|m| diags.error(format!("{path}.start"), m))
        .ok();
    let end = parse_hhmm(&window.end, true)
        .map_err(|m| diags.error(format!("{path}.end"), m))
        .ok();
    if window.end == "23:59" {
        diags.warn(
            format!("{path}.end"),
            "23:59 leaves the last minute of the day awake: use 24:00 for the end of the day",
        );
    }
    if let (Some(s), Some(e)) = (start, end)
        && s == e
    {
        diags.error(
            format!("{path}.end"),
            format!(
                "start and end are both {}: a window needs different start and end times",
                window.start
            ),
        );
    }
    let days_field = format!("{path}.daysOfWeek");
    if window.days_of_week.is_empty() {
        diags.error(
            days_field.clone(),
            "at least one day is required (MON, TUE, WED, THU, FRI, SAT, SUN)",
        );
    }
    let mut mask = 0u8;
    let mut days_ok = !window.days_of_week.is_empty();
    for (j, name) in window.days_of_week.iter().enumerate() {
        match parse_day(name) {
            Ok(day) if mask & (1 << day) != 0 => diags.warn(
                format!("{days_field}[{j}]"),
                format!("{name} is listed more than once"),
            ),
            Ok(day) => mask |= 1 << day,
            Err(m) => {
                days_ok = false;
                diags.error(format!("{days_field}[{j}]"), m);
            }
        }
    }
    if let (Some(s), Some(e), true) = (start, end, days_ok)
        && s != e
        && let Some(warning) = long_off_warning(mask, s, e)
    {
        diags.warn(path.to_string(), warning);
    }
}

/// The longest stretch (in minutes of an idealised week without DST) during which a
/// window with these days and times is off, or `None` when it is off forever once started.
pub(crate) fn longest_off_minutes(mask: u8, start: u16, end: u16) -> Option<u32> {
    // (minute of week, is_hibernate); wakes sort before hibernates at one instant so a
    // hibernate wins the tie (R2).
    let mut events: Vec<(u32, bool)> = Vec::new();
    for day in 0..7u32 {
        if mask & (1 << day) != 0 {
            events.push((day * 1440 + u32::from(start), true));
            events.push(((day * 1440 + u32::from(end)) % WEEK_MINUTES, false));
        }
    }
    events.sort_unstable();
    // State after each distinct instant: the last event at that instant decides.
    let mut states: Vec<(u32, bool)> = Vec::new();
    for (at, hibernate) in events {
        match states.last_mut() {
            Some(last) if last.0 == at => last.1 = hibernate || last.1,
            _ => states.push((at, hibernate)),
        }
    }
    if states.iter().all(|s| s.1) {
        return None;
    }
    let n = states.len();
    let mut longest = 0;
    for i in 0..n {
        if states[i].1 && !states[(i + n - 1) % n].1 {
            // An off run starts at i; it ends at the next awake state.
            let mut k = (i + 1) % n;
            while states[k].1 {
                k = (k + 1) % n;
            }
            let length = (states[k].0 + WEEK_MINUTES - states[i].0) % WEEK_MINUTES;
            let length = if length == 0 { WEEK_MINUTES } else { length };
            longest = longest.max(length);
        }
    }
    Some(longest)
}

fn long_off_warning(mask: u8, start: u16, end: u16) -> Option<String> {
    let days = || {
        DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, d)| *d)
            .collect::<Vec<_>>()
            .join(",")
    };
    let end_text = if end == DAY_MINUTES {
        "24:00".to_string()
    } else {
        format_minutes(end)
    };
    match longest_off_minutes(mask, start, end) {
        None => Some(format!(
            "[{}] {}–{} never wakes up once it has started (a wake and a hibernation at the same instant: the hibernation wins)",
            days(),
            format_minutes(start),
            end_text
        )),
        Some(minutes) if minutes > LONG_OFF_WARN_MINUTES => Some(format!(
            "[{}] {}–{} keeps targets off for {} in a row (more than 96h): wake-ups only happen on listed days; list the wake-up days too if that is not intended",
            days(),
            format_minutes(start),
            end_text,
            format_duration(std::time::Duration::from_secs(u64::from(minutes) * 60))
        )),
        Some(_) => None,
    }
}

/// Checks a `ScheduleException` spec. `field` is the path of the spec, usually `spec`.
pub fn check_exception(spec: &ScheduleExceptionSpec, field: &str) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if spec.plan_ref.name.trim().is_empty() {
        diags.error(
            format!("{field}.planRef.name"),
            "the name of the plan this exception applies to is required",
        );
    }
    if spec.valid_from >= spec.valid_until {
        diags.error(
            format!("{field}.validUntil"),
            format!(
                "validUntil ({}) must be after validFrom ({})",
                spec.valid_until.to_rfc3339(),
                spec.valid_from.to_rfc3339()
            ),
        );
    }
    if let Some(lead) = &spec.lead_time {
        let lead_field = format!("{field}.leadTime");
        match parse_duration(lead) {
            Err(m) => diags.error(lead_field, m),
            Ok(d) if chrono::TimeDelta::from_std(d).is_err() => {
                diags.error(lead_field, format!("leadTime {lead:?} is too large"))
            }
            Ok(_) if spec.kind != ExceptionType::Suspend => diags.warn(
                lead_field,
                format!(
                    "leadTime only applies to suspend exceptions; it is ignored for {}",
                    spec.kind.as_str()
                ),
            ),
            Ok(_) => {}
        }
    }
    let windows_field = format!("{field}.windows");
    if spec.windows.is_empty() {
        diags.error(windows_field.clone(), "at least one window is required");
    }
    diags.extend(check_windows(&spec.windows, &windows_field));
    diags
}
