//! `describe PLAN`: schedule in local time, waves, per-target state, restore
//! summary and recent Events.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use std::time::Duration;

use hibernator_core::duration::format_duration;
use hibernator_core::planner::ExecutionPlan;
use hibernator_core::readyby::{LeadSchedule, wake_lead};
use hibernator_core::schedule::Transition;
use hibernator_core::types::{ExecutionStatus, HibernatePlan, Operation};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::{
    Connection, OVERRIDE, OVERRIDE_UNTIL, Output, PluginError, RETRY_NOW, SUSPEND_REASON,
    SUSPEND_UNTIL, line, preview, restore, write_json,
};
use crate::cli::plan::{PlanFormat, write_plan};

/// How many upcoming transitions `describe` shows.
const TRANSITIONS: usize = 4;
/// How many recent Events `describe` shows.
const EVENTS: usize = 10;

/// Arguments of `describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// Show times in this IANA time zone instead of the plan's.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// A recent Event of the plan.
struct EventRow {
    at: Option<DateTime<Utc>>,
    kind: String,
    reason: String,
    note: String,
    count: i32,
}

async fn events(conn: &Connection, plan: &str) -> Result<Vec<EventRow>, PluginError> {
    let list = conn
        .api::<Event>()
        .list(&ListParams::default().fields(&format!("regarding.name={plan}")))
        .await
        .map_err(|e| {
            PluginError::api(
                format!("list Events of HibernatePlan {}", conn.qualified(plan)),
                e,
            )
        })?;
    let mut rows: Vec<EventRow> = list
        .items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some("HibernatePlan"))
        })
        .map(|e| {
            let at = e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .and_then(to_chrono);
            EventRow {
                at,
                kind: e.type_.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
                note: e.note.unwrap_or_default(),
                count: e.series.as_ref().map_or(1, |s| s.count),
            }
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(EVENTS);
    Ok(rows)
}

/// Converts a Kubernetes timestamp.
fn to_chrono(ts: k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.as_second(), u32::try_from(ts.subsec_nanosecond()).ok()?)
}

/// The display time zone: `--timezone`, else the plan's.
fn display_tz(args: &Args, plan: &HibernatePlan) -> Result<Tz, PluginError> {
    let name = args
        .timezone
        .clone()
        .unwrap_or_else(|| plan.spec.schedule.timezone.clone());
    name.parse::<Tz>()
        .map_err(|_| PluginError::InvalidTimezone(name))
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn target_rows(plan: &HibernatePlan) -> Vec<Value> {
    let executions: Vec<ExecutionStatus> = plan
        .status
        .as_ref()
        .map(|s| s.executions.clone())
        .unwrap_or_default();
    plan.spec
        .targets
        .iter()
        .map(|t| {
            let exec = executions.iter().find(|e| e.target == t.name);
            json!({
                "name": t.name,
                "type": t.kind,
                "connector": t.connector_ref.as_ref().map(|r| format!("{}/{}", r.kind, r.name)),
                "state": exec.map(|e| e.state),
                "attempts": exec.map_or(0, |e| e.attempts),
                "message": exec.and_then(|e| e.message.clone()),
                "jobRef": exec.and_then(|e| e.job_ref.clone()),
            })
        })
        .collect()
}

pub(super) async fn run(
    conn: &Connection,
    args: &Args,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let plan = conn.plan(&args.plan).await?;
    let tz = display_tz(args, &plan)?;
    let (compiled, problems) = preview::compile_with_problems(conn, &plan).await?;
    let lead = wake_lead(
        &plan.spec,
        plan.status.as_ref().and_then(|s| s.wake_up.as_ref()),
    );
    let schedule = LeadSchedule::new(&compiled, lead.delta());
    let now = Utc::now();
    let transitions: Vec<_> = schedule.transitions(now).take(TRANSITIONS).collect();
    let (calendar_days, calendar_warnings) = crate::cli::schedule::calendar_notes(
        crate::cli::schedule::Moved {
            schedule: &schedule,
            lead: &lead,
            problems: &problems,
        },
        now,
        transitions.last().map(|t| t.at),
    );
    let aims = |t: &Transition| crate::cli::schedule::aimed_window_end(&schedule, t);
    let waves = |op| ExecutionPlan::build(&plan.spec, op).ok();
    let (shutdown, wakeup) = (waves(Operation::Shutdown), waves(Operation::Wakeup));
    let records = restore::records(conn, &args.plan).await?;
    let events = events(conn, &args.plan).await?;
    let annotations = plan.annotations();
    let ann = |k: &str| annotations.get(k).cloned();
    let status = plan.status.clone().unwrap_or_default();
    let targets = target_rows(&plan);
    match args.output {
        Output::Json => write_json(
            out,
            &json!({
                "name": plan.name_any(),
                "namespace": conn.namespace,
                "phase": status.phase,
                "cycleId": status.current_cycle_id,
                "operation": status.current_operation,
                "suspend": {
                    "spec": plan.spec.suspend,
                    "until": ann(SUSPEND_UNTIL),
                    "reason": ann(SUSPEND_REASON),
                },
                "override": {"to": ann(OVERRIDE), "until": ann(OVERRIDE_UNTIL)},
                "retryNow": ann(RETRY_NOW),
                "schedule": {
                    "timezone": plan.spec.schedule.timezone,
                    "displayTimezone": tz.name(),
                    "offHours": plan.spec.schedule.off_hours,
                    "state": schedule.state_at(now),
                    "transitions": transitions.iter().map(|t| json!({
                        "at": local(t.at, tz), "to": t.to,
                        "windowEnd": aims(t).map(|end| local(end, tz)),
                    })).collect::<Vec<_>>(),
                    "readyBy": crate::cli::schedule::lead_json(&lead),
                    "calendars": plan.spec.schedule.calendars,
                    "calendarDays": calendar_days,
                    "warnings": calendar_warnings,
                },
                "wakeUp": status.wake_up,
                "enforcement": status.enforcement,
                "waves": {
                    "shutdown": shutdown.as_ref().map(ExecutionPlan::waves),
                    "wakeup": wakeup.as_ref().map(ExecutionPlan::waves),
                },
                "targets": targets,
                "restore": records.iter().map(|(key, r)| json!({
                    "key": key,
                    "target": r.target,
                    "executor": r.executor,
                    "resources": r.entries.len(),
                    "keys": r.entries.keys().collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "events": events.iter().map(|e| json!({
                    "at": e.at.map(|t| local(t, tz)),
                    "type": e.kind,
                    "reason": e.reason,
                    "note": e.note,
                    "count": e.count,
                })).collect::<Vec<_>>(),
            }),
        ),
        Output::Table => {
            line(out, format!("Name:       {}", plan.name_any()))?;
            line(out, format!("Namespace:  {}", conn.namespace))?;
            line(out, format!("Phase:      {:?}", status.phase))?;
            if let Some(cycle) = &status.current_cycle_id {
                let op = status
                    .current_operation
                    .map(|o| o.to_string())
                    .unwrap_or_default();
                line(out, format!("Cycle:      {cycle} ({op})"))?;
            }
            if plan.spec.suspend || ann(SUSPEND_UNTIL).is_some() {
                let until = ann(SUSPEND_UNTIL)
                    .map(|u| format!("until {u}"))
                    .unwrap_or_else(|| "until resumed".to_string());
                let reason = ann(SUSPEND_REASON)
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                line(out, format!("Suspended:  {until}{reason}"))?;
            }
            if let Some(to) = ann(OVERRIDE) {
                let until = ann(OVERRIDE_UNTIL)
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default();
                line(out, format!("Override:   {to}{until}"))?;
            }
            line(
                out,
                format!(
                    "Schedule:   {} (times below in {}), {} now",
                    plan.spec.schedule.timezone,
                    tz.name(),
                    schedule.state_at(now)
                ),
            )?;
            for w in &plan.spec.schedule.off_hours {
                line(
                    out,
                    format!(
                        "  off {}–{} on {}",
                        w.start,
                        w.end,
                        w.days_of_week.join(",")
                    ),
                )?;
            }
            if let Some(text) = crate::cli::schedule::lead_line(&lead) {
                line(out, format!("  {text}"))?;
            }
            for t in &transitions {
                let aim = aims(t)
                    .map(|end| format!(" (ready by {})", local(end, tz)))
                    .unwrap_or_default();
                line(out, format!("  next: {} → {}{aim}", local(t.at, tz), t.to))?;
            }
            for day in &calendar_days {
                line(
                    out,
                    format!(
                        "  calendar: {} {} all day: {} ({})",
                        day["date"].as_str().unwrap_or_default(),
                        if day["effect"] == "awake" {
                            "awake"
                        } else {
                            "off"
                        },
                        day["name"].as_str().unwrap_or_default(),
                        day["calendar"].as_str().unwrap_or_default()
                    ),
                )?;
            }
            for warning in &calendar_warnings {
                line(out, format!("  warning: {warning}"))?;
            }
            for r in status.wake_up.iter().flat_map(|w| w.readiness.iter()) {
                let how = match r.early_seconds {
                    Some(s) if s >= 0 => format!(
                        "ready {} early",
                        format_duration(Duration::from_secs(s.unsigned_abs()))
                    ),
                    Some(s) => format!(
                        "ready {} late",
                        format_duration(Duration::from_secs(s.unsigned_abs()))
                    ),
                    None => "not ready (wake-up failed)".to_string(),
                };
                line(
                    out,
                    format!(
                        "  wake-up {}: {how} for the window end {}",
                        r.cycle_id,
                        local(r.window_end, tz)
                    ),
                )?;
            }
            if let Some(e) = &status.enforcement {
                let when = |t: Option<DateTime<Utc>>| t.map_or("-".to_string(), |t| local(t, tz));
                line(
                    out,
                    format!(
                        "Enforcement: woke up {} time(s) while hibernated; last check {} ({}), next {}",
                        e.woke_up_count,
                        when(e.last_check_at),
                        e.last_result.map_or("-".to_string(), |r| format!("{r:?}")),
                        when(e.next_check_at),
                    ),
                )?;
                if let Some(message) = &e.message {
                    line(out, format!("  {message}"))?;
                }
            }
            if let Some(plan) = &shutdown {
                write_plan(plan, PlanFormat::Table, out)
                    .map_err(|e| PluginError::Output(format!("{e:#}")))?;
            }
            let mut table =
                crate::cli::output::table(&["Target", "Type", "State", "Attempts", "Message"]);
            for t in &targets {
                let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                table.add_row(vec![
                    text("name"),
                    text("type"),
                    t["state"].as_str().unwrap_or("-").to_string(),
                    t["attempts"].to_string(),
                    text("message"),
                ]);
            }
            line(out, "Targets:")?;
            line(out, table)?;
            line(out, "Restore data:")?;
            if records.is_empty() {
                line(out, "  none")?;
            } else {
                line(out, restore::summary_table(&records))?;
            }
            line(out, "Events:")?;
            if events.is_empty() {
                return line(out, "  none");
            }
            let mut table = crate::cli::output::table(&["Time", "Type", "Reason", "Message"]);
            for e in &events {
                table.add_row(vec![
                    e.at.map(|t| local(t, tz)).unwrap_or_default(),
                    e.kind.clone(),
                    if e.count > 1 {
                        format!("{} (x{})", e.reason, e.count)
                    } else {
                        e.reason.clone()
                    },
                    e.note.clone(),
                ]);
            }
            line(out, table)
        }
    }
}
