//! The kubectl plugin: `kubectl hibernator …`.
//!
//! The `hibernator` binary runs this CLI when it is invoked as
//! `kubectl-hibernator` (a symlink or copy on `PATH`), and as
//! `hibernator kubectl …`. It reads and steers `HibernatePlan`s on a cluster:
//! `list`, `describe`, `preview`, `suspend`, `resume`, `override`, `retry`,
//! `restore inspect`, `logs` and `report`. Every write is a JSON merge patch of the
//! plan's annotations or `spec.suspend`, so nothing else on the object changes.

mod client;
mod control;
mod describe;
mod error;
mod list;
mod logs;
mod preview;
mod prices;
mod report;
mod restore;
mod until;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use hibernator_core::wellknown::{
    ANNOTATION_OVERRIDE as OVERRIDE, ANNOTATION_OVERRIDE_UNTIL as OVERRIDE_UNTIL,
    ANNOTATION_RETRY_NOW as RETRY_NOW, ANNOTATION_SUSPEND_REASON as SUSPEND_REASON,
    ANNOTATION_SUSPEND_UNTIL as SUSPEND_UNTIL, LABEL_CYCLE_ID as LABEL_CYCLE, LABEL_JOB_NAME,
    LABEL_OPERATION, LABEL_PLAN, LABEL_TARGET, restore_config_map_name,
};

pub use client::{Connection, connect};
pub use error::PluginError;
pub use prices::{PriceTable, Savings};
pub use report::ReportOutput;
pub use until::parse_until;

/// `kubectl hibernator`: inspect and steer Hibernator plans on a cluster.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-hibernator",
    bin_name = "kubectl hibernator",
    version,
    about
)]
pub struct PluginCli {
    /// Connection options, accepted before or after the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Options of every command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// Output format of the commands that list things.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List plans with phase, next transition and targets.
    List(list::Args),
    /// Show a plan: schedule, waves, per-target state, restore data, Events.
    Describe(describe::Args),
    /// Upcoming transitions, with the namespace's ScheduleExceptions applied.
    Preview(preview::Args),
    /// Suspend a plan (until a time with `--until`, else until `resume`).
    Suspend(control::SuspendArgs),
    /// Resume a suspended plan (clears `spec.suspend` and the suspend annotations).
    Resume(control::PlanArg),
    /// Force a plan to hibernate or wake up now, optionally until a time.
    Override(control::OverrideArgs),
    /// Retry a plan in Error now.
    Retry(control::PlanArg),
    /// Restore data commands.
    #[command(subcommand)]
    Restore(restore::Command),
    /// Runner logs of the current (or last) cycle.
    Logs(logs::Args),
    /// Hours hibernated against hours scheduled, re-enforcements and
    /// estimated savings per plan and target for a month.
    Report(report::Args),
}

/// Runs a parsed plugin command against the cluster, writing to `out`.
pub async fn run(cli: PluginCli, out: &mut dyn std::io::Write) -> Result<ExitCode, PluginError> {
    install_crypto_provider();
    let conn = connect(&cli.global).await?;
    match cli.command {
        PluginCommand::List(args) => list::run(&conn, &args, out).await,
        PluginCommand::Describe(args) => describe::run(&conn, &args, out).await,
        PluginCommand::Preview(args) => preview::run(&conn, &args, out).await,
        PluginCommand::Suspend(args) => control::suspend(&conn, &args, out).await,
        PluginCommand::Resume(args) => control::resume(&conn, &args, out).await,
        PluginCommand::Override(args) => control::override_state(&conn, &args, out).await,
        PluginCommand::Retry(args) => control::retry(&conn, &args, out).await,
        PluginCommand::Restore(restore::Command::Inspect(args)) => {
            restore::inspect(&conn, &args, out).await
        }
        PluginCommand::Logs(args) => logs::run(&conn, &args, out).await,
        PluginCommand::Report(args) => report::run(&conn, &args, out).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `args` (the first one is the program name) and runs the command,
/// capturing its output (for tests and docs checks).
pub async fn run_capture<I, S>(args: I) -> Result<(ExitCode, String), PluginError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let cli = PluginCli::try_parse_from(args).map_err(|e| PluginError::Usage(e.to_string()))?;
    let mut buffer = Vec::new();
    let code = run(cli, &mut buffer).await?;
    let text = String::from_utf8(buffer).map_err(|e| PluginError::Output(e.to_string()))?;
    Ok((code, text))
}

/// Runs a parsed command on a fresh runtime; errors are printed to stderr
/// and exit 1.
pub fn run_blocking(cli: PluginCli, out: &mut dyn std::io::Write) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli, out)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Entry point of `kubectl-hibernator`: parses the process arguments.
pub fn main() -> ExitCode {
    let cli = PluginCli::parse();
    // Not `stdout().lock()`: `logs --follow` writes while other threads may
    // log; `Stdout` locks per write (see `cli::main`).
    let mut stdout = std::io::stdout();
    run_blocking(cli, &mut stdout)
}

/// Whether `argv0` names the plugin (`kubectl-hibernator`, with or without
/// `.exe`, any directory).
pub fn invoked_as_plugin(argv0: &std::ffi::OsStr) -> bool {
    let name = std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = name.strip_suffix(".exe").unwrap_or(name);
    name == "kubectl-hibernator"
}

fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Writes pretty JSON followed by a newline.
fn write_json(out: &mut dyn std::io::Write, value: &serde_json::Value) -> Result<(), PluginError> {
    crate::cli::output::write_json(out, value).map_err(|e| PluginError::Output(format!("{e:#}")))
}

/// Writes a line.
fn line(out: &mut dyn std::io::Write, text: impl std::fmt::Display) -> Result<(), PluginError> {
    writeln!(out, "{text}").map_err(|e| PluginError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_name_is_recognised_with_and_without_exe() {
        assert!(invoked_as_plugin("kubectl-hibernator".as_ref()));
        assert!(invoked_as_plugin(
            "/usr/local/bin/kubectl-hibernator".as_ref()
        ));
        assert!(invoked_as_plugin("kubectl-hibernator.exe".as_ref()));
        assert!(!invoked_as_plugin("/usr/bin/hibernator".as_ref()));
        assert!(!invoked_as_plugin("kubectl-hibernator-old".as_ref()));
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = PluginCli::try_parse_from([
            "kubectl-hibernator",
            "list",
            "-n",
            "dev",
            "--context",
            "c1",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("dev"));
        assert_eq!(cli.global.context.as_deref(), Some("c1"));
    }
}
