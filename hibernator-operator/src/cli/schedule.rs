//! `hibernator schedule FILE [--at RFC3339] [--next N] [--output json|table]`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use hibernator_core::duration::format_duration;
use hibernator_core::readyby::{LeadSchedule, LeadSource, WakeLead, wake_lead};
use hibernator_core::schedule::{ScheduleState, Transition};
use serde_json::json;

use super::{FileArg, Format, output};

/// Arguments of `schedule`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: FileArg,
    /// Instant to evaluate, RFC 3339 (default: now).
    #[arg(long, value_parser = parse_instant)]
    at: Option<DateTime<Utc>>,
    /// Number of transitions to list.
    #[arg(long, default_value_t = 5)]
    next: usize,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// Parses an RFC 3339 instant with any offset.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 instant such as 2026-11-23T20:00:00+01:00: {e}")
        })
}

pub(crate) fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    let docs = output::read_plan(&args.file.file)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let (schedule, problems) = docs
        .compile_schedule(at.date_naive())
        .with_context(|| format!("{}", args.file.file.display()))?;
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let name = docs.plan.metadata.name.clone().unwrap_or_default();
    let lead = wake_lead(
        &docs.plan.spec,
        docs.plan.status.as_ref().and_then(|s| s.wake_up.as_ref()),
    );
    let effective = LeadSchedule::new(&schedule, lead.delta());
    // One more than asked, so the table can say how long the last state lasts.
    let transitions: Vec<Transition> = effective.transitions(at).take(args.next + 1).collect();
    write_transitions(
        &name,
        Moved {
            schedule: &effective,
            lead: &lead,
            problems: &problems,
        },
        at,
        &transitions,
        args.next,
        args.output,
        out,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The ready-by lead as JSON (`null` without ready-by).
pub(crate) fn lead_json(lead: &WakeLead) -> serde_json::Value {
    if lead.source == LeadSource::Off {
        return serde_json::Value::Null;
    }
    json!({
        "lead": format_duration(lead.lead),
        "leadSeconds": lead.lead.as_secs(),
        "expectedSeconds": lead.expected.as_secs(),
        "source": lead.source.as_str(),
        "targets": lead.targets.iter().map(|t| json!({
            "target": t.target,
            "expectedSeconds": t.expected.as_secs(),
            "samples": t.samples,
        })).collect::<Vec<_>>(),
    })
}

/// One line describing the ready-by lead (`None` without ready-by).
pub(crate) fn lead_line(lead: &WakeLead) -> Option<String> {
    let why = match lead.source {
        LeadSource::Off => return None,
        LeadSource::History => "learned from recent wake-ups".to_string(),
        LeadSource::Defaults => {
            let defaults = lead.targets.iter().filter(|t| t.samples == 0).count();
            format!("{defaults} target(s) without measured wake-ups use executor defaults")
        }
        LeadSource::MaxLead => format!(
            "capped by spec.wakeUp.maxLead; the plan is expected to need {}",
            format_duration(lead.expected)
        ),
    };
    Some(format!(
        "ready-by: wake-ups start {} before the window end ({why})",
        format_duration(lead.lead)
    ))
}

/// The scheduled window end a wake-up transition at `t` aims at, when the
/// ready-by lead moved it.
pub(crate) fn aimed_window_end(
    schedule: &LeadSchedule<'_>,
    t: &Transition,
) -> Option<DateTime<Utc>> {
    if t.to != ScheduleState::Awake || schedule.lead().is_zero() {
        return None;
    }
    schedule.window_end(t.at)
}

/// A schedule with its ready-by lead applied, and how the lead was computed.
#[derive(Clone, Copy)]
pub(crate) struct Moved<'a> {
    /// The schedule with the lead.
    pub schedule: &'a LeadSchedule<'a>,
    /// The lead.
    pub lead: &'a WakeLead,
    /// Calendars of `spec.schedule.calendars` that could not be used (shown as warnings).
    pub problems: &'a [String],
}

/// Days of at least this many days ahead are listed with the calendar days.
const CALENDAR_PREVIEW_DAYS: i64 = 14;

/// The calendar days from `at` to the end of the preview (the last transition
/// shown, at least [`CALENDAR_PREVIEW_DAYS`] ahead), and warnings: calendars
/// that could not be used, and previews reaching past a calendar's coverage.
pub(crate) fn calendar_notes(
    moved: Moved<'_>,
    at: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
) -> (Vec<serde_json::Value>, Vec<String>) {
    let compiled = moved.schedule.schedule();
    let tz = compiled.timezone();
    let until = last
        .unwrap_or(at)
        .max(at + chrono::Duration::days(CALENDAR_PREVIEW_DAYS));
    let (from_day, until_day) = (
        at.with_timezone(&tz).date_naive(),
        until.with_timezone(&tz).date_naive(),
    );
    let mut days = Vec::new();
    let mut warnings: Vec<String> = moved.problems.to_vec();
    for calendar in compiled.calendars() {
        for (date, name) in calendar.between(from_day, until_day) {
            days.push(json!({
                "date": date.to_string(),
                "effect": calendar.effect.as_str(),
                "name": name,
                "calendar": calendar.id,
            }));
        }
        warnings.extend(calendar.coverage_warning(from_day, until_day));
    }
    days.sort_by(|a, b| a["date"].as_str().cmp(&b["date"].as_str()));
    (days, warnings)
}

/// Writes a schedule's state at `at` and the first `shown` of `transitions`
/// (which may hold one more, so the table can say how long the last state
/// lasts), in the schedule's time zone. Wake-ups moved by a ready-by lead
/// name the window end they aim at.
pub(crate) fn write_transitions(
    name: &str,
    moved: Moved<'_>,
    at: DateTime<Utc>,
    transitions: &[Transition],
    shown: usize,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let Moved { schedule, lead, .. } = moved;
    let tz = schedule.schedule().timezone();
    let last_shown = transitions[..shown.min(transitions.len())]
        .last()
        .map(|t| t.at);
    let (calendar_days, warnings) = calendar_notes(moved, at, last_shown);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz);
    match format {
        Format::Json => {
            let list: Vec<_> = transitions
                .iter()
                .take(shown)
                .map(|t| {
                    let mut row = json!({
                        "at": local(t.at).to_rfc3339_opts(SecondsFormat::Secs, false),
                        "to": t.to,
                    });
                    if let Some(end) = aimed_window_end(schedule, t) {
                        row["windowEnd"] =
                            json!(local(end).to_rfc3339_opts(SecondsFormat::Secs, false));
                    }
                    row
                })
                .collect();
            output::write_json(
                out,
                &json!({
                    "plan": name,
                    "timezone": tz.name(),
                    "at": local(at).to_rfc3339_opts(SecondsFormat::Secs, false),
                    "state": schedule.state_at(at),
                    "transitions": list,
                    "readyBy": lead_json(lead),
                    "calendarDays": calendar_days,
                    "warnings": warnings,
                }),
            )?;
        }
        Format::Table => {
            writeln!(
                out,
                "plan {name} ({}) at {}: {}",
                tz.name(),
                local(at).format("%a %Y-%m-%d %H:%M %Z"),
                schedule.state_at(at)
            )?;
            if let Some(text) = lead_line(lead) {
                writeln!(out, "{text}")?;
            }
            for warning in &warnings {
                writeln!(out, "warning: {warning}")?;
            }
            for day in &calendar_days {
                let date = day["date"].as_str().unwrap_or_default();
                let weekday = date
                    .parse::<chrono::NaiveDate>()
                    .map(|d| d.format("%a").to_string())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "calendar: {weekday} {date} {} all day: {} ({})",
                    if day["effect"] == "awake" {
                        "awake"
                    } else {
                        "off"
                    },
                    day["name"].as_str().unwrap_or_default(),
                    day["calendar"].as_str().unwrap_or_default(),
                )?;
            }
            if transitions.is_empty() {
                writeln!(out, "no transitions: the schedule never changes state")?;
                return Ok(());
            }
            let mut table = output::table(&["#", "At (local)", "To", "For"]);
            for (i, t) in transitions.iter().take(shown).enumerate() {
                let lasts = transitions
                    .get(i + 1)
                    .and_then(|next| (next.at - t.at).to_std().ok())
                    .map(format_duration)
                    .unwrap_or_else(|| "until further notice".to_string());
                let to = match aimed_window_end(schedule, t) {
                    Some(end) => format!("{} (ready by {})", t.to, local(end).format("%a %H:%M")),
                    None => t.to.to_string(),
                };
                table.add_row(vec![
                    (i + 1).to_string(),
                    local(t.at).format("%a %Y-%m-%d %H:%M %Z").to_string(),
                    to,
                    lasts,
                ]);
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(())
}
