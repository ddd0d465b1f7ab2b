//! Command-line interface of the `hibernator` binary.

mod crd;
mod demo;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod schedule;
pub(crate) mod service;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hibernator_core::Operation;

/// Puts non-production cloud infrastructure to sleep during off-hours and
/// wakes it up exactly as it was.
#[derive(Debug, Parser)]
#[command(name = "hibernator", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a plan file (plan, exceptions, connectors) against the schemas and
    /// the executors compiled into this binary. Exit 0 when valid, 1 when not.
    Validate(validate::Args),
    /// Show whether a plan is off at an instant and its next transitions.
    Schedule(schedule::Args),
    /// Show the execution waves of a plan for one operation.
    Plan(plan::Args),
    /// Print the CustomResourceDefinitions (or write them to a directory).
    Crd(crd::Args),
    /// Validate, preview and plan the shipped example (examples/plans/demo.yaml).
    Demo(demo::Args),
    /// Run a plan's shutdown or wake-up now, in-process, without Kubernetes
    /// (AWS targets, credentials from the default chain, restore data in a
    /// state file). Exit 0 when every target completed, 1 when one failed or
    /// was aborted, 2 on usage or I/O errors.
    Run(run::Args),
    /// Run one target's shutdown or wake-up inside a runner Job (inputs from
    /// flags or their HIBERNATOR_* environment variables). Exit 0 on success, 1 on failure.
    Runner(crate::runner::RunnerArgs),
    /// Serve the validating admission webhook (POST /validate) over TLS.
    Webhook(crate::webhook::WebhookArgs),
    /// Run the HibernatePlan controller (leader-elected; probes on :8081, metrics on :8080).
    Controller(crate::controller::cli::ControllerArgs),
    /// The kubectl plugin (`kubectl hibernator …`) under another name: the
    /// same commands as when this binary is invoked as `kubectl-hibernator`.
    #[command(name = "kubectl")]
    Kubectl(crate::plugin::PluginCli),
}

/// Output formats shared by the subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text and tables.
    Table,
    /// JSON for scripts.
    Json,
}

/// Operation argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OperationArg {
    /// Put targets to sleep.
    Shutdown,
    /// Wake targets up.
    Wakeup,
}

impl From<OperationArg> for Operation {
    fn from(value: OperationArg) -> Self {
        match value {
            OperationArg::Shutdown => Operation::Shutdown,
            OperationArg::Wakeup => Operation::Wakeup,
        }
    }
}

/// A plan file argument.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArg {
    /// Multi-document YAML with one HibernatePlan and optionally ScheduleExceptions and connectors.
    pub file: PathBuf,
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Never `stdout().lock()` here: the guard would live as long as the
    // command, and the long-running ones (controller, runner, webhook) log
    // to stdout from other threads, which would then block for good.
    // `Stdout` locks per write, which is all the commands need.
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a parsed command, writing its output to `out`.
///
/// Returns the process exit code: 0 on success, 1 when the command ran and
/// found the input invalid. Errors (unreadable files, I/O) map to exit 2.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, out),
        Command::Schedule(args) => schedule::run(&args, out),
        Command::Plan(args) => plan::run(&args, out),
        Command::Crd(args) => crd::run(&args, out),
        Command::Demo(args) => demo::run(&args, out),
        Command::Run(args) => run::run(&args, out),
        Command::Runner(args) => crate::runner::command(args),
        Command::Webhook(args) => crate::webhook::command(args),
        Command::Controller(args) => crate::controller::cli::command(args),
        Command::Kubectl(cli) => Ok(crate::plugin::run_blocking(cli, out)),
    }
}

/// Runs the CLI on an argument list, capturing stdout (for tests and docs checks).
pub fn run_capture<I, S>(args: I) -> anyhow::Result<(ExitCode, String)>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let mut buffer = Vec::new();
    let code = run(cli, &mut buffer)?;
    Ok((code, String::from_utf8(buffer)?))
}

#[cfg(test)]
mod tests;
