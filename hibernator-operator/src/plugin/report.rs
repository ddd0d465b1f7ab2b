//! `report`: hours hibernated against hours scheduled per plan and target
//! for one month, re-enforcements, and with `--prices` the estimated cost
//! saved (see `docs/savings-report.md`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use hibernator_core::types::{HibernatePlan, MonthAccounting, PlanAccounting};
use hibernator_reconcile::accounting::{coverage, live, month_of, parse_month};
use kube::Api;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::prices::{self, PriceTable, Savings};
use super::{Connection, PluginError, line, preview, write_json};

/// Output formats of `report`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// A table, one row per plan and one per target.
    #[default]
    Table,
    /// JSON: one object per plan with its targets.
    Json,
    /// CSV with a header line, one line per plan and per target.
    Csv,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report plans in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Month to report, `YYYY-MM`, in each plan's schedule time zone
    /// (default: the current month).
    #[arg(long)]
    pub month: Option<String>,
    /// Price table: a ConfigMap `name` in the command's namespace, or
    /// `namespace/name`, of `<type>.<class>: "<dollars per hour>"`.
    #[arg(long)]
    pub prices: Option<String>,
    /// Count open intervals up to this RFC 3339 instant instead of now
    /// (what the status already accrued stays as it is).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ReportOutput::Table)]
    pub output: ReportOutput,
}

/// One target's line of the report.
#[derive(Debug)]
struct TargetRow {
    target: String,
    kind: String,
    hibernated: u64,
    resources: u32,
    hibernated_now: bool,
    savings: Option<Savings>,
}

/// One plan's lines of the report.
#[derive(Debug)]
struct PlanRow {
    namespace: String,
    name: String,
    month: String,
    timezone: String,
    /// `None`: the controller has not accounted the plan yet.
    month_data: Option<MonthAccounting>,
    targets: Vec<TargetRow>,
    savings: Option<Savings>,
}

pub(super) async fn run(
    conn: &Connection,
    args: &Args,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    if let Some(month) = &args.month
        && parse_month(month).is_none()
    {
        return Err(PluginError::InvalidMonth(month.clone()));
    }
    let now = match &args.as_of {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| PluginError::InvalidAsOf(text.clone()))?,
        None => Utc::now(),
    };
    let prices = match &args.prices {
        Some(reference) => Some(prices::read(conn, reference).await?),
        None => None,
    };
    let api: Api<HibernatePlan> = if args.all_namespaces {
        Api::all(conn.client.clone())
    } else {
        conn.api()
    };
    let what = if args.all_namespaces {
        "list HibernatePlans in all namespaces".to_string()
    } else {
        format!("list HibernatePlans in namespace {}", conn.namespace)
    };
    let mut plans = api
        .list(&ListParams::default())
        .await
        .map_err(|e| PluginError::api(what, e))?
        .items;
    plans.sort_by_key(|p| (p.namespace().unwrap_or_default(), p.name_any()));
    let mut rows = Vec::with_capacity(plans.len());
    for plan in &plans {
        rows.push(plan_row(conn, plan, args.month.as_deref(), prices.as_ref(), now).await?);
    }
    match args.output {
        ReportOutput::Json => write_json(out, &json_rows(&rows, prices.as_ref(), now)),
        ReportOutput::Csv => csv(out, &rows),
        ReportOutput::Table => {
            if rows.is_empty() {
                let scope = if args.all_namespaces {
                    "any namespace".to_string()
                } else {
                    format!("namespace {}", conn.namespace)
                };
                return line(out, format!("no HibernatePlans in {scope}"));
            }
            table(out, &rows, args.all_namespaces, prices.as_ref())
        }
    }
}

async fn plan_row(
    conn: &Connection,
    plan: &HibernatePlan,
    month: Option<&str>,
    prices: Option<&PriceTable>,
    now: DateTime<Utc>,
) -> Result<PlanRow, PluginError> {
    let namespace = plan.namespace().unwrap_or_default();
    let scoped = Connection {
        client: conn.client.clone(),
        namespace: namespace.clone(),
    };
    // the schedule (with exceptions) accrues the open interval; a plan
    // whose schedule does not compile is reported as accounted so far
    let schedule = preview::compile(&scoped, plan).await.ok();
    let accounting: Option<&PlanAccounting> =
        plan.status.as_ref().and_then(|s| s.accounting.as_deref());
    let tz: Tz = schedule
        .as_ref()
        .map(hibernator_core::schedule::CompiledSchedule::timezone)
        .or_else(|| accounting.and_then(|a| a.timezone.as_deref()?.parse().ok()))
        .or_else(|| plan.spec.schedule.timezone.parse().ok())
        .unwrap_or(Tz::UTC);
    let month = month.map_or_else(|| month_of(now, tz), str::to_string);
    let live = accounting.map(|a| live(a, &plan.spec.targets, schedule.as_ref(), now));
    let month_data = live.as_ref().map(|a| {
        a.months
            .iter()
            .find(|m| m.month == month)
            .cloned()
            .unwrap_or_else(|| MonthAccounting {
                month: month.clone(),
                ..MonthAccounting::default()
            })
    });
    let hibernated_now: Vec<&str> = live
        .as_ref()
        .map(|a| a.hibernated.iter().map(|h| h.target.as_str()).collect())
        .unwrap_or_default();
    // spec targets first (in spec order), then targets accounted this month
    // that are no longer in the spec
    let mut targets: Vec<TargetRow> = Vec::new();
    let by_name: BTreeMap<&str, _> = month_data
        .iter()
        .flat_map(|m| m.targets.iter())
        .map(|t| (t.target.as_str(), t))
        .collect();
    let mut names: Vec<(String, String)> = plan
        .spec
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.kind.clone()))
        .collect();
    for t in month_data.iter().flat_map(|m| m.targets.iter()) {
        if !names.iter().any(|(n, _)| n == &t.target) {
            names.push((t.target.clone(), t.type_.clone()));
        }
    }
    // no accounting yet: no estimate (never a made-up zero)
    let prices = prices.filter(|_| month_data.is_some());
    let mut plan_savings = prices.map(|_| Savings::default());
    for (name, kind) in names {
        let data = by_name.get(name.as_str());
        let savings =
            prices.map(|p| data.map_or_else(Savings::default, |t| p.savings(&t.resource_seconds)));
        if let (Some(total), Some(s)) = (plan_savings.as_mut(), savings.as_ref()) {
            total.add(s);
        }
        targets.push(TargetRow {
            hibernated_now: hibernated_now.contains(&name.as_str()),
            target: name,
            kind,
            hibernated: data.map_or(0, |t| t.hibernated_seconds),
            resources: data.map_or(0, |t| t.resources),
            savings,
        });
    }
    Ok(PlanRow {
        namespace,
        name: plan.name_any(),
        month,
        timezone: tz.name().to_string(),
        month_data,
        targets,
        savings: plan_savings,
    })
}

fn hours(seconds: u64) -> String {
    format!("{:.2}", seconds as f64 / 3600.0)
}

fn percent(month: &MonthAccounting) -> String {
    coverage(month).map_or_else(|| "-".to_string(), |c| format!("{:.1}%", c * 100.0))
}

fn money(savings: Option<&Savings>) -> String {
    match savings {
        None => "-".to_string(),
        Some(s) => match s.amount() {
            Some(amount) => format!("${amount:.2}"),
            None => format!("unknown (no price for {})", s.unpriced.join(", ")),
        },
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn savings_json(savings: Option<&Savings>) -> Value {
    match savings {
        None => Value::Null,
        Some(s) => json!({
            "amount": s.amount().map(round2),
            "pricedAmount": round2(s.priced),
            "unpricedClasses": s.unpriced,
        }),
    }
}

fn json_rows(rows: &[PlanRow], prices: Option<&PriceTable>, now: DateTime<Utc>) -> Value {
    let plans: Vec<Value> = rows
        .iter()
        .map(|r| {
            let m = r.month_data.as_ref();
            json!({
                "namespace": r.namespace,
                "plan": r.name,
                "month": r.month,
                "timezone": r.timezone,
                "accounted": m.is_some(),
                "scheduledSeconds": m.map(|m| m.scheduled_seconds),
                "hibernatedSeconds": m.map(|m| m.hibernated_seconds),
                "coveredSeconds": m.map(|m| m.covered_seconds),
                "coverage": m.and_then(coverage).map(|c| (c * 10_000.0).round() / 10_000.0),
                "reEnforcements": m.map(|m| m.re_enforcements),
                "estimatedSavings": savings_json(r.savings.as_ref()),
                "targets": r.targets.iter().map(|t| json!({
                    "target": t.target,
                    "type": t.kind,
                    "hibernatedSeconds": m.map(|_| t.hibernated),
                    "resources": t.resources,
                    "hibernatedNow": t.hibernated_now,
                    "estimatedSavings": savings_json(t.savings.as_ref()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "asOf": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "prices": prices.map(|p| p.source.clone()),
        "plans": plans,
    })
}

const CSV_HEADER: &str = "namespace,plan,target,type,month,scheduled_hours,hibernated_hours,coverage_percent,re_enforcements,resources,estimated_savings_usd,unpriced_classes";

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv_savings(savings: Option<&Savings>) -> (String, String) {
    match savings {
        None => (String::new(), String::new()),
        Some(s) => (
            s.amount().map(|a| format!("{a:.2}")).unwrap_or_default(),
            s.unpriced.join(" "),
        ),
    }
}

fn csv(out: &mut dyn std::io::Write, rows: &[PlanRow]) -> Result<(), PluginError> {
    line(out, CSV_HEADER)?;
    for r in rows {
        let m = r.month_data.as_ref();
        let (amount, unpriced) = csv_savings(r.savings.as_ref());
        let resources: u32 = r.targets.iter().map(|t| t.resources).sum();
        let cells = [
            r.namespace.clone(),
            r.name.clone(),
            String::new(),
            String::new(),
            r.month.clone(),
            m.map(|m| hours(m.scheduled_seconds)).unwrap_or_default(),
            m.map(|m| hours(m.hibernated_seconds)).unwrap_or_default(),
            m.and_then(coverage)
                .map(|c| format!("{:.1}", c * 100.0))
                .unwrap_or_default(),
            m.map(|m| m.re_enforcements.to_string()).unwrap_or_default(),
            resources.to_string(),
            amount,
            unpriced,
        ];
        line(
            out,
            cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","),
        )?;
        for t in &r.targets {
            let (amount, unpriced) = csv_savings(t.savings.as_ref());
            let cells = [
                r.namespace.clone(),
                r.name.clone(),
                t.target.clone(),
                t.kind.clone(),
                r.month.clone(),
                String::new(),
                m.map(|_| hours(t.hibernated)).unwrap_or_default(),
                String::new(),
                String::new(),
                t.resources.to_string(),
                amount,
                unpriced,
            ];
            line(
                out,
                cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","),
            )?;
        }
    }
    Ok(())
}

fn table(
    out: &mut dyn std::io::Write,
    rows: &[PlanRow],
    all_namespaces: bool,
    prices: Option<&PriceTable>,
) -> Result<(), PluginError> {
    let mut header = vec![
        "Plan",
        "Target",
        "Month",
        "Scheduled h",
        "Hibernated h",
        "Coverage",
        "Re-enforcements",
        "Resources",
    ];
    if prices.is_some() {
        header.push("Est. saved");
    }
    if all_namespaces {
        header.insert(0, "Namespace");
    }
    let mut table = crate::cli::output::table(&header);
    for r in rows {
        let m = r.month_data.as_ref();
        let resources: u32 = r.targets.iter().map(|t| t.resources).sum();
        let mut cells = vec![
            r.name.clone(),
            "(all)".to_string(),
            r.month.clone(),
            m.map_or_else(|| "-".to_string(), |m| hours(m.scheduled_seconds)),
            m.map_or_else(
                || "not accounted yet".to_string(),
                |m| hours(m.hibernated_seconds),
            ),
            m.map_or_else(|| "-".to_string(), percent),
            m.map_or_else(|| "-".to_string(), |m| m.re_enforcements.to_string()),
            resources.to_string(),
        ];
        if prices.is_some() {
            cells.push(money(r.savings.as_ref()));
        }
        if all_namespaces {
            cells.insert(0, r.namespace.clone());
        }
        table.add_row(cells);
        for t in &r.targets {
            let mut cells = vec![
                r.name.clone(),
                format!(
                    "{} ({}){}",
                    t.target,
                    t.kind,
                    if t.hibernated_now { " *" } else { "" }
                ),
                r.month.clone(),
                String::new(),
                m.map_or_else(|| "-".to_string(), |_| hours(t.hibernated)),
                String::new(),
                String::new(),
                t.resources.to_string(),
            ];
            if prices.is_some() {
                cells.push(money(t.savings.as_ref()));
            }
            if all_namespaces {
                cells.insert(0, r.namespace.clone());
            }
            table.add_row(cells);
        }
    }
    line(out, table)?;
    line(
        out,
        "Coverage: hours every target was hibernated within the scheduled off-hours / scheduled off-hours. * hibernated now.",
    )
}
