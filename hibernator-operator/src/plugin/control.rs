//! `suspend`, `resume`, `override` and `retry`: merge patches of the plan's
//! annotations and `spec.suspend`, nothing else.

use chrono::Utc;
use clap::ValueEnum;
use hibernator_core::types::HibernatePlan;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::until::{format_instant, parse_until};
use super::{
    Connection, OVERRIDE, OVERRIDE_UNTIL, PluginError, RETRY_NOW, SUSPEND_REASON, SUSPEND_UNTIL,
    line,
};

/// A plan name.
#[derive(Debug, clap::Args)]
pub struct PlanArg {
    /// Name of the HibernatePlan.
    pub plan: String,
}

/// Arguments of `suspend`.
#[derive(Debug, clap::Args)]
pub struct SuspendArgs {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// Suspend until this RFC 3339 instant or for this duration (`2h`);
    /// without it, until `resume`.
    #[arg(long)]
    pub until: Option<String>,
    /// Why (shown by `describe`).
    #[arg(long)]
    pub reason: Option<String>,
}

/// The state `override` forces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverrideTo {
    /// Hibernate now.
    Hibernate,
    /// Wake up now.
    Wakeup,
}

impl OverrideTo {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hibernate => "hibernate",
            Self::Wakeup => "wakeup",
        }
    }
}

/// Arguments of `override`.
#[derive(Debug, clap::Args)]
pub struct OverrideArgs {
    /// Name of the HibernatePlan.
    pub plan: String,
    /// The state to force.
    #[arg(long, value_enum)]
    pub to: OverrideTo,
    /// Keep it until this RFC 3339 instant or for this duration (`2h`);
    /// without it, until the override annotation is removed.
    #[arg(long)]
    pub until: Option<String>,
}

/// Applies a JSON merge patch to a plan that must exist.
async fn patch_plan(conn: &Connection, plan: &str, patch: Value) -> Result<(), PluginError> {
    conn.plan(plan).await?;
    conn.api::<HibernatePlan>()
        .patch(plan, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            PluginError::api(format!("patch HibernatePlan {}", conn.qualified(plan)), e)
        })?;
    Ok(())
}

pub(super) async fn suspend(
    conn: &Connection,
    args: &SuspendArgs,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let mut annotations = serde_json::Map::new();
    let reason = args
        .reason
        .as_ref()
        .map_or(Value::Null, |r| Value::String(r.clone()));
    annotations.insert(SUSPEND_REASON.to_string(), reason);
    let (patch, message) = match &args.until {
        Some(until) => {
            let at = format_instant(parse_until(until, Utc::now())?);
            annotations.insert(SUSPEND_UNTIL.to_string(), Value::String(at.clone()));
            (
                json!({"metadata": {"annotations": annotations}}),
                format!("suspended until {at}"),
            )
        }
        None => {
            annotations.insert(SUSPEND_UNTIL.to_string(), Value::Null);
            (
                json!({"metadata": {"annotations": annotations}, "spec": {"suspend": true}}),
                "suspended until resumed".to_string(),
            )
        }
    };
    patch_plan(conn, &args.plan, patch).await?;
    line(
        out,
        format!("hibernateplan {} {message}", conn.qualified(&args.plan)),
    )
}

pub(super) async fn resume(
    conn: &Connection,
    args: &PlanArg,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let patch = json!({
        "metadata": {"annotations": {SUSPEND_UNTIL: null, SUSPEND_REASON: null}},
        "spec": {"suspend": false},
    });
    patch_plan(conn, &args.plan, patch).await?;
    line(
        out,
        format!("hibernateplan {} resumed", conn.qualified(&args.plan)),
    )
}

pub(super) async fn override_state(
    conn: &Connection,
    args: &OverrideArgs,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let until = args
        .until
        .as_deref()
        .map(|u| parse_until(u, Utc::now()).map(format_instant))
        .transpose()?;
    let patch = json!({"metadata": {"annotations": {
        OVERRIDE: args.to.as_str(),
        OVERRIDE_UNTIL: until,
    }}});
    patch_plan(conn, &args.plan, patch).await?;
    let until_text = until.map(|u| format!(" until {u}")).unwrap_or_default();
    line(
        out,
        format!(
            "hibernateplan {} overridden to {}{until_text}",
            conn.qualified(&args.plan),
            args.to.as_str()
        ),
    )
}

pub(super) async fn retry(
    conn: &Connection,
    args: &PlanArg,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let now = format_instant(Utc::now());
    let patch = json!({"metadata": {"annotations": {RETRY_NOW: now}}});
    patch_plan(conn, &args.plan, patch).await?;
    line(
        out,
        format!(
            "hibernateplan {} retry requested at {now}",
            conn.qualified(&args.plan)
        ),
    )
}
