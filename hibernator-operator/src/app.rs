//! [`App`]: the whole `hibernator` binary (controller, runner, admission
//! webhook, CLI, kubectl plugin) around one [`ExecutorSet`].
//!
//! The shipped binary is `App::new(ExecutorSet::new()).main()`. An embedder
//! builds the same binary with executors of its own; every role then knows
//! them: the webhook, `hibernator validate` and the controller validate
//! their parameters, the runner Jobs (which run the controller's image) and
//! `hibernator run` build them.
//!
//! ```no_run
//! use hibernator_executors::ExecutorSet;
//! # use hibernator_executors::kubernetes::WorkloadScalerExecutor as MyExecutor;
//!
//! #[global_allocator]
//! static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;
//!
//! fn main() -> std::process::ExitCode {
//!     let executors = ExecutorSet::new().kubernetes(MyExecutor::new);
//!     hibernator_operator::App::new(executors).main()
//! }
//! ```

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hibernator_executors::ExecutorSet;

use crate::cli::{Cli, Command};

/// The `hibernator` binary with the executors of one [`ExecutorSet`].
#[derive(Clone, Debug)]
pub struct App {
    executors: Arc<ExecutorSet>,
}

impl Default for App {
    /// The shipped binary: the built-in executors.
    fn default() -> Self {
        Self::new(ExecutorSet::new())
    }
}

impl App {
    /// The binary with `executors`.
    pub fn new(executors: ExecutorSet) -> Self {
        Self {
            executors: Arc::new(executors),
        }
    }

    /// The executors of this binary.
    pub fn executors(&self) -> &ExecutorSet {
        &self.executors
    }

    /// The process's `main`: the kubectl plugin when invoked as
    /// `kubectl-hibernator` (a symlink or copy on PATH), else the CLI with
    /// the process arguments. Exit 2 on errors (unreadable files, I/O).
    pub fn main(self) -> ExitCode {
        if std::env::args_os()
            .next()
            .is_some_and(|argv0| crate::plugin::invoked_as_plugin(&argv0))
        {
            return crate::plugin::main();
        }
        let cli = Cli::parse();
        // Never `stdout().lock()` here: the guard would live as long as the
        // command, and the long-running ones (controller, runner, webhook) log
        // to stdout from other threads, which would then block for good.
        // `Stdout` locks per write, which is all the commands need.
        let mut stdout = std::io::stdout();
        match self.run(cli, &mut stdout) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        }
    }

    /// Runs a parsed command, writing its output to `out`.
    ///
    /// Returns the process exit code: 0 on success, 1 when the command ran
    /// and found the input invalid. Errors (unreadable files, I/O) map to
    /// exit 2.
    pub fn run(&self, cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
        use crate::cli::{crd, plan, run, schedule, validate};
        match cli.command {
            Command::Validate(args) => validate::run(&args, &self.executors.catalog(), out),
            Command::Schedule(args) => schedule::run(&args, out),
            Command::Plan(args) => plan::run(&args, out),
            Command::Crd(args) => crd::run(&args, out),
            Command::Run(args) => run::run(&args, &self.executors, out),
            Command::Runner(args) => crate::runner::command(args, &self.executors),
            Command::Webhook(args) => crate::webhook::command(args, &self.executors),
            Command::Controller(args) => crate::controller::args::command(args, &self.executors),
            Command::Kubectl(cli) => Ok(crate::plugin::run_blocking(cli, out)),
        }
    }

    /// Runs the CLI on an argument list, capturing stdout (for tests and
    /// docs checks).
    pub fn run_capture<I, S>(&self, args: I) -> anyhow::Result<(ExitCode, String)>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        let mut buffer = Vec::new();
        let code = self.run(cli, &mut buffer)?;
        Ok((code, String::from_utf8(buffer)?))
    }
}
