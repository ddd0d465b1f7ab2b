//! `hibernator schedule FILE [--at RFC3339] [--next N] [--output json|table]`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use hibernator_core::duration::format_duration;
use hibernator_core::schedule::{CompiledSchedule, Transition};
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
    let schedule = CompiledSchedule::compile(&docs.plan.spec.schedule, &docs.exceptions)
        .with_context(|| format!("{}", args.file.file.display()))?;
    let at = args.at.unwrap_or_else(Utc::now);
    let name = docs.plan.metadata.name.clone().unwrap_or_default();
    // One more than asked, so the table can say how long the last state lasts.
    let transitions: Vec<Transition> = schedule.transitions(at).take(args.next + 1).collect();
    write_transitions(
        &name,
        &schedule,
        at,
        &transitions,
        args.next,
        args.output,
        out,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a schedule's state at `at` and the first `shown` of `transitions`
/// (which may hold one more, so the table can say how long the last state
/// lasts), in the schedule's time zone.
pub(crate) fn write_transitions(
    name: &str,
    schedule: &CompiledSchedule,
    at: DateTime<Utc>,
    transitions: &[Transition],
    shown: usize,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let tz = schedule.timezone();
    let local = |t: DateTime<Utc>| t.with_timezone(&tz);
    match format {
        Format::Json => {
            let list: Vec<_> = transitions
                .iter()
                .take(shown)
                .map(|t| {
                    json!({
                        "at": local(t.at).to_rfc3339_opts(SecondsFormat::Secs, false),
                        "to": t.to,
                    })
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
                table.add_row(vec![
                    (i + 1).to_string(),
                    local(t.at).format("%a %Y-%m-%d %H:%M %Z").to_string(),
                    t.to.to_string(),
                    lasts,
                ]);
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(())
}
