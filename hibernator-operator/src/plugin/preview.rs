//! `preview PLAN [--days N]`: upcoming transitions with the namespace's
//! ScheduleExceptions applied (the core schedule engine, as the controller
//! uses it).

use chrono::{DateTime, Utc};
use hibernator_core::readyby::{LeadSchedule, wake_lead};
use hibernator_core::schedule::{CompiledSchedule, Transition};
use hibernator_core::types::{HibernatePlan, ScheduleException};
use kube::ResourceExt;
use kube::api::ListParams;

use super::{Connection, Output, PluginError};
use crate::cli::Format;

/// Arguments of `preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// How many days ahead to list transitions.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The ScheduleExceptions in the plan's namespace that refer to it.
pub(super) async fn exceptions_of(
    conn: &Connection,
    plan: &HibernatePlan,
) -> Result<Vec<ScheduleException>, PluginError> {
    let name = plan.name_any();
    let list = conn
        .api::<ScheduleException>()
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            PluginError::api(
                format!("list ScheduleExceptions in namespace {}", conn.namespace),
                e,
            )
        })?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| {
            e.spec.plan_ref.name == name
                && e.spec
                    .plan_ref
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| ns == conn.namespace)
        })
        .collect())
}

/// Compiles a plan's schedule with its exceptions.
pub(super) async fn compile(
    conn: &Connection,
    plan: &HibernatePlan,
) -> Result<CompiledSchedule, PluginError> {
    let exceptions = exceptions_of(conn, plan).await?;
    CompiledSchedule::compile(&plan.spec.schedule, &exceptions).map_err(|source| {
        PluginError::Schedule {
            plan: conn.qualified(&plan.name_any()),
            source,
        }
    })
}

/// The transitions in `(at, at + days]`, plus the one after (so the table
/// can say how long the last state lasts); returns them and how many lie
/// inside the window.
pub(super) fn window(
    schedule: &LeadSchedule<'_>,
    at: DateTime<Utc>,
    days: u32,
) -> (Vec<Transition>, usize) {
    let end = at + chrono::Duration::days(i64::from(days));
    let mut list: Vec<Transition> = Vec::new();
    for t in schedule.transitions(at) {
        let past_end = t.at > end;
        list.push(t);
        if past_end {
            break;
        }
    }
    let shown = list.iter().filter(|t| t.at <= end).count();
    (list, shown)
}

pub(super) async fn run(
    conn: &Connection,
    args: &Args,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let plan = conn.plan(&args.plan).await?;
    let schedule = compile(conn, &plan).await?;
    let lead = wake_lead(
        &plan.spec,
        plan.status.as_ref().and_then(|s| s.wake_up.as_ref()),
    );
    let effective = LeadSchedule::new(&schedule, lead.delta());
    let at = Utc::now();
    let (transitions, shown) = window(&effective, at, args.days);
    let format = match args.output {
        Output::Json => Format::Json,
        Output::Table => Format::Table,
    };
    crate::cli::schedule::write_transitions(
        &args.plan,
        crate::cli::schedule::Moved {
            schedule: &effective,
            lead: &lead,
        },
        at,
        &transitions,
        shown,
        format,
        out,
    )
    .map_err(|e| PluginError::Output(format!("{e:#}")))
}
