//! `suspend`, `resume`, `override` and `retry`: merge patches of the plan's
//! annotations and `spec.suspend`, nothing else.

use chrono::Utc;
use clap::ValueEnum;
use hibernator_core::types::HibernatePlan;
use hibernator_kube::controls::{
    OverrideState, format_instant, override_patch, resume_patch, retry_patch, suspend_patch,
};
use serde_json::Value;

use super::until::parse_until;
use super::{Connection, PluginError, line};

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

impl From<OverrideTo> for OverrideState {
    fn from(to: OverrideTo) -> Self {
        match to {
            OverrideTo::Hibernate => OverrideState::Hibernate,
            OverrideTo::Wakeup => OverrideState::Wakeup,
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
    hibernator_kube::controls::patch_plan(&conn.api::<HibernatePlan>(), plan, &patch)
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
    let until = args
        .until
        .as_deref()
        .map(|u| parse_until(u, Utc::now()))
        .transpose()?;
    let patch = suspend_patch(until, args.reason.as_deref());
    let message = match until {
        Some(at) => format!("suspended until {}", format_instant(at)),
        None => "suspended until resumed".to_string(),
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
    let patch = resume_patch();
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
        .map(|u| parse_until(u, Utc::now()))
        .transpose()?;
    let state = OverrideState::from(args.to);
    patch_plan(conn, &args.plan, override_patch(state, until)).await?;
    let until_text = until
        .map(|u| format!(" until {}", format_instant(u)))
        .unwrap_or_default();
    line(
        out,
        format!(
            "hibernateplan {} overridden to {}{until_text}",
            conn.qualified(&args.plan),
            state.as_str()
        ),
    )
}

pub(super) async fn retry(
    conn: &Connection,
    args: &PlanArg,
    out: &mut dyn std::io::Write,
) -> Result<(), PluginError> {
    let at = Utc::now();
    let now = format_instant(at);
    patch_plan(conn, &args.plan, retry_patch(at)).await?;
    line(
        out,
        format!(
            "hibernateplan {} retry requested at {now}",
            conn.qualified(&args.plan)
        ),
    )
}
