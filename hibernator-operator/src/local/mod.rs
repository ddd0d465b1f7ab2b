//! `hibernator run`'s engine: a whole plan in-process, without Kubernetes
//! (local, as opposed to the runner Jobs of [`crate::runner`]).
//!
//! [`execute`] chooses the cycle id ([`cycle_id`]), runs
//! [`hibernator_core::cycle::CycleBuilder`] with an injected
//! [`ExecutorProvider`] (the CLI uses [`provider::FileProvider`]), shows
//! the events while it runs ([`display`]) and writes the summary (a table or
//! JSON). The command-line layer (`cli/run.rs`) adds file reading,
//! validation, the file restore store and Ctrl-C handling.

pub mod cycle_id;
pub mod display;
pub mod provider;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use hibernator_core::cycle::{
    CycleBuilder, CycleControl, CycleOptions, CycleSummary, ExecutorProvider,
};
use hibernator_core::input::PlanDocuments;
use hibernator_core::planner::PlanError;
use hibernator_core::restore::RestoreStore;
use hibernator_core::types::{ExecutionState, Operation};
use tokio::sync::mpsc::unbounded_channel;

use self::cycle_id::{CycleIdError, CycleIdSource, choose_cycle_id};
use self::display::{Display, DisplayMode, human_duration};

/// Summary formats of `hibernator run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryFormat {
    /// A header line, the live display, then a table.
    Table,
    /// Only the [`CycleSummary`] as JSON.
    Json,
}

/// Settings of one `hibernator run`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `--cycle-id`, if given.
    pub cycle_id: Option<String>,
    /// Summary format.
    pub format: SummaryFormat,
    /// Live display while the cycle runs.
    pub display: DisplayMode,
    /// Where the restore data lives, for the summary (`None`: not shown).
    pub state_path: Option<PathBuf>,
    /// Overrides the cycle options derived from the plan (retry policy,
    /// default timeout); the cycle id is always set by [`execute`].
    pub cycle: Option<CycleOptions>,
}

/// Errors of `hibernator run` that are not target failures (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cycle id cannot be chosen (bad `--cycle-id`, unreadable state).
    #[error(transparent)]
    CycleId(#[from] CycleIdError),
    /// The plan's execution section is invalid.
    #[error("invalid plan: {0}")]
    Plan(#[from] PlanError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding the JSON summary failed.
    #[error("cannot encode the summary: {0}")]
    Json(#[from] serde_json::Error),
}

/// Exit code of a finished cycle: 0 when every target completed, else 1.
pub fn exit_code(summary: &CycleSummary) -> ExitCode {
    if summary.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `operation` on the plan of `docs` (already validated) with
/// executors from `provider` and restore data in `store`, writing the live
/// lines and the summary to `out`. `control` lets the caller stop the cycle
/// (Ctrl-C). Returns the summary; [`exit_code`] turns it into the exit code.
pub async fn execute(
    docs: &PlanDocuments,
    operation: Operation,
    provider: &dyn ExecutorProvider,
    store: Arc<dyn RestoreStore>,
    options: RunOptions,
    control: CycleControl,
    out: &mut dyn Write,
) -> Result<CycleSummary, RunError> {
    let plan = &docs.plan;
    let choice = choose_cycle_id(options.cycle_id.as_deref(), store.as_ref(), Utc::now()).await?;
    let mut cycle_options = options
        .cycle
        .clone()
        .unwrap_or_else(|| CycleOptions::for_plan(plan, choice.id.clone()));
    cycle_options.cycle_id = choice.id.clone();
    let plan_name = cycle_options.plan.clone();
    if options.format == SummaryFormat::Table {
        let origin = match choice.source {
            CycleIdSource::Given => "given",
            CycleIdSource::Resumed => {
                "resumed: the state file holds a hibernation not yet woken up"
            }
            CycleIdSource::New => "new",
        };
        writeln!(
            out,
            "{operation} of plan {plan_name}: {} target(s), cycle {} ({origin})",
            plan.spec.targets.len(),
            choice.id
        )?;
    }
    let (events, receiver) = unbounded_channel();
    let display = Display::new(options.display, &plan.spec.targets, control.clone());
    let cycle = CycleBuilder::new(plan, operation, provider, store)
        .options(cycle_options)
        .events(events)
        .control(control)
        .run();
    let (summary, shown) = tokio::join!(cycle, display.consume(receiver, &mut *out));
    let summary = summary?;
    shown?;
    match options.format {
        SummaryFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &summary)?;
            writeln!(out)?;
        }
        SummaryFormat::Table => write_table(&summary, &plan_name, &options, out)?,
    }
    Ok(summary)
}

/// How many resource keys a table cell lists before summarizing.
const LISTED_RESOURCES: usize = 5;

fn resources_cell(resources: &[String]) -> String {
    if resources.is_empty() {
        return "0".to_string();
    }
    let mut cell = format!("{}", resources.len());
    for key in resources.iter().take(LISTED_RESOURCES) {
        cell.push('\n');
        cell.push_str(key);
    }
    if resources.len() > LISTED_RESOURCES {
        cell.push_str(&format!("\n… {} more", resources.len() - LISTED_RESOURCES));
    }
    cell
}

fn write_table(
    summary: &CycleSummary,
    plan: &str,
    options: &RunOptions,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    let mut table =
        crate::cli::output::table(&["Target", "State", "Duration", "Resources", "Message"]);
    for target in &summary.targets {
        let duration = if target.state == ExecutionState::Aborted {
            "-".to_string()
        } else {
            human_duration(target.duration)
        };
        table.add_row(vec![
            format!("{} ({})", target.name, target.executor),
            format!("{:?}", target.state),
            duration,
            resources_cell(&target.resources),
            target.message.clone().unwrap_or_default(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "{} of plan {plan} (cycle {}): {}: {} completed, {} failed, {} aborted",
        summary.operation,
        summary.cycle_id,
        if summary.success {
            "succeeded"
        } else {
            "FAILED"
        },
        summary.count(ExecutionState::Completed),
        summary.count(ExecutionState::Failed),
        summary.count(ExecutionState::Aborted),
    )?;
    if let Some(path) = &options.state_path {
        writeln!(out, "restore data: {}", path.display())?;
    }
    Ok(())
}
