//! Runs the `file-replicas` executor by hand:
//!
//! ```text
//! hibernator-example-custom-executor <shutdown|wakeup> <directory> <restore-file>
//! ```
//!
//! It adds the executor to an [`ExecutorSet`] as a standalone executor (it
//! needs no connector), looks it up by type like the runner does, and runs
//! it through the shared run functions with a [`FileRestoreStore`].

use std::process::ExitCode;

use hibernator_core::executor::{ExecutionContext, RetryPolicy, run_shutdown, run_wakeup, typed};
use hibernator_core::restore::FileRestoreStore;
use hibernator_core::types::Operation;
use hibernator_example_custom_executor::FileReplicas;
use hibernator_executors::{ExecutorSet, ExecutorSource};

const USAGE: &str =
    "usage: hibernator-example-custom-executor <shutdown|wakeup> <directory> <restore-file>";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [operation, directory, restore_file] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let operation: Operation = match operation.parse() {
        Ok(op) => op,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let executors = ExecutorSet::empty().standalone(typed(FileReplicas));
    let Some(ExecutorSource::Standalone(executor)) = executors.get("file-replicas") else {
        eprintln!("file-replicas is not in the executor set");
        return ExitCode::FAILURE;
    };
    let store = FileRestoreStore::new(restore_file);
    let params = serde_json::json!({"directory": directory});
    // One cycle per day and operation: re-running the same day keeps the first observation.
    let cycle = format!("{operation}-{}", chrono_free_day());
    let ctx = ExecutionContext::builder("example", "services", cycle, operation).build();
    let policy = RetryPolicy::default();
    let result = match operation {
        Operation::Shutdown => {
            run_shutdown(executor.as_ref(), &ctx, &params, &store, &policy).await
        }
        Operation::Wakeup => run_wakeup(executor.as_ref(), &ctx, &params, &store, &policy).await,
    };
    match result {
        Ok(report) => {
            println!(
                "{operation} done: resources {:?}, newly recorded {:?}, {} entries pending",
                report.resources, report.recorded, report.pending_entries
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{operation} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Days since the Unix epoch (keeps the example free of a date dependency).
fn chrono_free_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}
