//! `list`: plans with phase, next transition and targets.

use chrono::SecondsFormat;
use hibernator_core::types::HibernatePlan;
use kube::Api;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::{Value, json};

use super::{Connection, Output, PluginError, SUSPEND_UNTIL, line, write_json};

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List plans in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// One row of `list`, as JSON.
fn row(plan: &HibernatePlan) -> Value {
    let status = plan.status.clone().unwrap_or_default();
    let suspended = plan.spec.suspend || plan.annotations().contains_key(SUSPEND_UNTIL);
    json!({
        "namespace": plan.namespace().unwrap_or_default(),
        "name": plan.name_any(),
        "phase": status.phase,
        "suspended": suspended,
        "nextTransition": status
            .next_transition
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        "targets": plan.spec.targets.len(),
        "targetsSummary": status.targets_summary,
    })
}

pub(super) async fn run(
    conn: &Connection,
    args: &Args,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
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
    let rows: Vec<Value> = plans.iter().map(row).collect();
    match args.output {
        Output::Json => write_json(out, &Value::Array(rows)),
        Output::Table => {
            if rows.is_empty() {
                let scope = if args.all_namespaces {
                    "any namespace".to_string()
                } else {
                    format!("namespace {}", conn.namespace)
                };
                return line(out, format!("no HibernatePlans in {scope}"));
            }
            let mut header = vec!["Name", "Phase", "Next transition", "Targets"];
            if args.all_namespaces {
                header.insert(0, "Namespace");
            }
            let mut table = crate::cli::output::table(&header);
            for r in &rows {
                let text = |v: &Value| v.as_str().map(str::to_string);
                let phase = text(&r["phase"]).unwrap_or_default();
                let phase = if r["suspended"] == true && phase != "Suspended" {
                    format!("{phase} (suspended)")
                } else {
                    phase
                };
                let targets = match text(&r["targetsSummary"]) {
                    Some(summary) => format!("{} ({summary})", r["targets"]),
                    None => r["targets"].to_string(),
                };
                let mut cells = vec![
                    text(&r["name"]).unwrap_or_default(),
                    phase,
                    text(&r["nextTransition"]).unwrap_or_else(|| "-".to_string()),
                    targets,
                ];
                if args.all_namespaces {
                    cells.insert(0, text(&r["namespace"]).unwrap_or_default());
                }
                table.add_row(cells);
            }
            line(out, table)
        }
    }
}
