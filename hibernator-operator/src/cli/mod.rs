//! Command-line interface of the `hibernator` binary.

pub(crate) mod crd;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod schedule;
pub(crate) mod service;
pub(crate) mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hibernator_core::types::Operation;

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
    /// Run a plan's shutdown or wake-up now, in-process, without Kubernetes
    /// (targets with a CloudProvider connector or none; AWS credentials from
    /// the default chain, restore data in a state file). Exit 0 when every target completed, 1 when one failed or
    /// was aborted, 2 on usage or I/O errors.
    Run(run::Args),
    /// Run one target's shutdown or wake-up inside a runner Job (inputs from
    /// flags or their HIBERNATOR_* environment variables). Exit 0 on success, 1 on failure.
    Runner(crate::runner::RunnerArgs),
    /// Serve the validating admission webhook (POST /validate) over TLS.
    Webhook(crate::webhook::WebhookArgs),
    /// Run the HibernatePlan controller (leader-elected; probes on :8081, metrics on :8080).
    Controller(crate::controller::args::ControllerArgs),
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

/// Parses the process arguments and runs the command with the built-in
/// executors ([`App::main`](crate::App::main) of [`App::default`](crate::App)).
pub fn main() -> ExitCode {
    crate::App::default().main()
}

/// Runs a parsed command with the built-in executors, writing its output to
/// `out` (see [`App::run`](crate::App::run)).
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    crate::App::default().run(cli, out)
}

/// Runs the CLI on an argument list with the built-in executors, capturing
/// stdout (for tests and docs checks).
pub fn run_capture<I, S>(args: I) -> anyhow::Result<(ExitCode, String)>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    crate::App::default().run_capture(args)
}

#[cfg(test)]
mod tests;
