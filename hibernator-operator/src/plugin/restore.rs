//! `restore inspect PLAN [TARGET]`: the plan's restore ConfigMap, decoded.

use hibernator_core::restore::{RestoreRecord, decode_record};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};

use super::{Connection, Output, PluginError, line, restore_config_map_name, write_json};

/// `restore` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the restore data of a plan (every target, or one).
    Inspect(InspectArgs),
}

/// Arguments of `restore inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// Only this target, with every entry's saved state.
    pub target: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The decoded records of a plan's restore ConfigMap, by key (empty when the
/// ConfigMap does not exist).
pub(super) async fn records(
    conn: &Connection,
    plan: &str,
) -> Result<Vec<(String, RestoreRecord)>, PluginError> {
    let name = restore_config_map_name(plan);
    let cm = conn
        .api::<ConfigMap>()
        .get_opt(&name)
        .await
        .map_err(|e| PluginError::api(format!("get ConfigMap {}", conn.qualified(&name)), e))?;
    let Some(data) = cm.and_then(|cm| cm.data) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(data.len());
    for (key, text) in data {
        let location = format!("ConfigMap {}#{key}", conn.qualified(&name));
        let restore_error = |source| PluginError::Restore {
            plan: conn.qualified(plan),
            source,
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            restore_error(hibernator_core::restore::StoreError::Corrupt {
                location: location.clone(),
                message: e.to_string(),
            })
        })?;
        let record = decode_record(value, &location).map_err(restore_error)?;
        out.push((key, record));
    }
    Ok(out)
}

pub(super) async fn inspect(
    conn: &Connection,
    args: &InspectArgs,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let plan = conn.plan(&args.plan).await?;
    let mut records = records(conn, &args.plan).await?;
    if let Some(target) = &args.target {
        if !plan.spec.targets.iter().any(|t| &t.name == target)
            && !records
                .iter()
                .any(|(k, r)| k == target || &r.target == target)
        {
            return Err(PluginError::UnknownTarget {
                plan: conn.qualified(&args.plan),
                target: target.clone(),
                known: plan
                    .spec
                    .targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        records.retain(|(k, r)| k == target || &r.target == target);
    }
    match args.output {
        Output::Json => {
            let list: Vec<Value> = records
                .iter()
                .map(|(key, record)| json!({"key": key, "record": record}))
                .collect();
            write_json(
                out,
                &json!({
                    "plan": args.plan,
                    "namespace": conn.namespace,
                    "configMap": restore_config_map_name(&args.plan),
                    "records": list,
                }),
            )
        }
        Output::Table => {
            if records.is_empty() {
                return line(
                    out,
                    format!(
                        "no restore data in ConfigMap {}",
                        conn.qualified(&restore_config_map_name(&args.plan))
                    ),
                );
            }
            if args.target.is_some() {
                let mut table = crate::cli::output::table(&[
                    "Target",
                    "Resource",
                    "Saved awake state",
                    "Cycle",
                    "Observed",
                ]);
                for (_, record) in &records {
                    for (key, entry) in &record.entries {
                        table.add_row(vec![
                            record.target.clone(),
                            key.clone(),
                            entry.state.to_string(),
                            entry.cycle_id.clone(),
                            entry.observed_at.to_rfc3339(),
                        ]);
                    }
                }
                return line(out, table);
            }
            line(out, summary_table(&records))
        }
    }
}

/// One row per target: executor, entry count and resource keys.
pub(super) fn summary_table(records: &[(String, RestoreRecord)]) -> comfy_table::Table {
    let mut table =
        crate::cli::output::table(&["Target", "Executor", "Resources", "Keys", "Last cycle"]);
    for (_, record) in records {
        table.add_row(vec![
            record.target.clone(),
            record.executor.clone(),
            record.entries.len().to_string(),
            record
                .entries
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            record
                .last_cycle_id
                .clone()
                .unwrap_or_else(|| "-".to_string()),
        ]);
    }
    table
}
