//! `hibernator run FILE --operation shutdown|wakeup [--state PATH] [--output json|table] [--cycle-id ID]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hibernator_core::cycle::CycleControl;
use hibernator_core::restore::FileRestoreStore;
use hibernator_executors::ExecutorSet;
use serde_json::json;

use super::{FileArg, Format, OperationArg, output, validate};
use crate::local::display::DisplayMode;
use crate::local::provider::FileProvider;
use crate::local::{RunOptions, SummaryFormat, execute, exit_code};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    file: FileArg,
    /// Operation to run.
    #[arg(long, value_enum)]
    operation: OperationArg,
    /// Restore-data file (default: `<file stem>.state.json` next to FILE).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Cycle id (default: the unfinished cycle in the state file, else a new one from the time).
    #[arg(long)]
    cycle_id: Option<String>,
}

/// The default state file of a plan file: `<dir>/<stem>.state.json`.
pub fn default_state_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".to_string());
    file.with_file_name(format!("{stem}.state.json"))
}

pub(crate) fn run(
    args: &Args,
    executors: &Arc<ExecutorSet>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let path = &args.file.file;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (docs, diagnostics) = validate::diagnose(&text, &executors.catalog());
    let docs = match docs {
        Some(docs) if diagnostics.is_valid() => docs,
        _ => {
            match args.output {
                Format::Json => output::write_json(
                    out,
                    &json!({
                        "operation": hibernator_core::types::Operation::from(args.operation),
                        "success": false,
                        "errors": diagnostics.errors,
                        "targets": [],
                    }),
                )?,
                Format::Table => {
                    for e in &diagnostics.errors {
                        writeln!(out, "error: {e}")?;
                    }
                    writeln!(
                        out,
                        "{} is invalid: nothing was run (see `hibernator validate`)",
                        path.display()
                    )?;
                }
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    for warning in &diagnostics.warnings {
        eprintln!("warning: {warning}");
    }
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_path(path));
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    let (format, display) = match args.output {
        Format::Table if interactive => (SummaryFormat::Table, DisplayMode::Bars),
        Format::Table => (SummaryFormat::Table, DisplayMode::Lines),
        Format::Json if std::io::stderr().is_terminal() => (SummaryFormat::Json, DisplayMode::Bars),
        Format::Json => (SummaryFormat::Json, DisplayMode::Quiet),
    };
    let options = RunOptions {
        cycle_id: args.cycle_id.clone(),
        format,
        display,
        state_path: Some(state_path.clone()),
        cycle: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        init_tracing();
        let store = Arc::new(FileRestoreStore::new(&state_path));
        let provider = FileProvider::from_documents(&docs, executors.clone());
        let control = CycleControl::new();
        let interrupts = tokio::spawn(handle_interrupts(control.clone()));
        let result = execute(
            &docs,
            args.operation.into(),
            &provider,
            store,
            options,
            control,
            out,
        )
        .await;
        interrupts.abort();
        let summary = result?;
        Ok(exit_code(&summary))
    })
}

/// First Ctrl-C: stop dispatching; second: cancel the running targets.
async fn handle_interrupts(control: CycleControl) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    control.stop_dispatching();
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    control.cancel_running();
}

/// Logs of libraries (e.g. the AWS SDK) on stderr, filtered by `RUST_LOG`
/// (default: warnings).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Already initialized (a second run in one process) is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
