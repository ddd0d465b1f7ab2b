//! `preview PLAN [--days N]`: upcoming transitions with the namespace's
//! ScheduleExceptions and the plan's HolidayCalendars applied (the core
//! schedule engine, as the controller uses it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hibernator_core::calendar::{CalendarDays, Documents, resolve, usable};
use hibernator_core::readyby::{LeadSchedule, wake_lead};
use hibernator_core::schedule::{CompiledSchedule, ScheduleError, Transition};
use hibernator_core::types::{HibernatePlan, HolidayCalendar, ScheduleException};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

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

/// ConfigMaps read for iCalendar documents, by `namespace/name`.
struct FetchedDocuments(BTreeMap<String, ConfigMap>);

impl Documents for FetchedDocuments {
    fn document(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>, String> {
        Ok(self
            .0
            .get(&format!("{namespace}/{name}"))
            .and_then(|c| c.data.as_ref()?.get(key).cloned()))
    }
}

/// The plan's calendars read from the cluster and resolved, one per
/// `spec.schedule.calendars` entry.
pub(super) async fn calendars_of(
    conn: &Connection,
    plan: &HibernatePlan,
    today: chrono::NaiveDate,
) -> Result<Vec<Result<CalendarDays, ScheduleError>>, PluginError> {
    let mut out = Vec::new();
    for (i, r) in plan.spec.schedule.calendars.iter().enumerate() {
        let ns = r
            .namespace
            .clone()
            .unwrap_or_else(|| conn.namespace.clone());
        let field = format!("spec.schedule.calendars[{i}]");
        let calendar = Api::<HolidayCalendar>::namespaced(conn.client.clone(), &ns)
            .get_opt(&r.name)
            .await
            .map_err(|e| PluginError::api(format!("get HolidayCalendar {ns}/{}", r.name), e))?;
        let Some(calendar) = calendar else {
            out.push(Err(ScheduleError::new(
                field,
                format!("HolidayCalendar {ns}/{} does not exist", r.name),
            )));
            continue;
        };
        let mut documents = BTreeMap::new();
        for source in &calendar.spec.ical {
            let name = &source.config_map_ref.name;
            if let Some(cm) = Api::<ConfigMap>::namespaced(conn.client.clone(), &ns)
                .get_opt(name)
                .await
                .map_err(|e| PluginError::api(format!("get ConfigMap {ns}/{name}"), e))?
            {
                documents.insert(format!("{ns}/{name}"), cm);
            }
        }
        out.push(
            resolve(&calendar, &FetchedDocuments(documents), today).map_err(|e| {
                ScheduleError::new(field, format!("HolidayCalendar {ns}/{}: {e}", r.name))
            }),
        );
    }
    Ok(out)
}

/// Compiles a plan's schedule with its exceptions and calendars.
pub(super) async fn compile(
    conn: &Connection,
    plan: &HibernatePlan,
) -> Result<CompiledSchedule, PluginError> {
    compile_with_problems(conn, plan).await.map(|(c, _)| c)
}

/// [`compile`], and the calendars that could not be used (as the controller
/// leaves them out, naming the field).
pub(super) async fn compile_with_problems(
    conn: &Connection,
    plan: &HibernatePlan,
) -> Result<(CompiledSchedule, Vec<String>), PluginError> {
    let exceptions = exceptions_of(conn, plan).await?;
    let resolved = calendars_of(conn, plan, Utc::now().date_naive()).await?;
    let (schedule, days, problems) = usable(&plan.spec.schedule, resolved);
    let compiled = CompiledSchedule::compile_with_calendars(&schedule, &exceptions, &days)
        .map_err(|source| PluginError::Schedule {
            plan: conn.qualified(&plan.name_any()),
            source,
        })?;
    Ok((compiled, problems.iter().map(ToString::to_string).collect()))
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
    let (schedule, problems) = compile_with_problems(conn, &plan).await?;
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
            problems: &problems,
        },
        at,
        &transitions,
        shown,
        format,
        out,
    )
    .map_err(|e| PluginError::Output(format!("{e:#}")))
}
