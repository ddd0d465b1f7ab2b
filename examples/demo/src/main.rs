//! `hibernator-demo`: the README's first command (`bash scripts/demo.sh`).
//!
//! Validates the shipped example plan, previews its schedule and prints its
//! execution waves, all from the copy embedded in the binary (so it works
//! from any directory). With `--endpoint` (an AWS emulator on this machine,
//! which `scripts/demo.sh` starts), it creates a small estate there,
//! hibernates and wakes it up through `hibernator run`'s code path and shows
//! the before/after state. Exit 1 unless every resource is back exactly as
//! it was.
//!
//! This is an example crate, not part of the shipped `hibernator` binary:
//! the AWS SDK calls that build the estate are the demo's alone.

mod emulator;
mod estate;
mod render;

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Parser;
use hibernator_core::planner::ExecutionPlan;
use hibernator_core::schedule::CompiledSchedule;
use hibernator_core::types::Operation;
use hibernator_executors::ExecutorSet;
use hibernator_operator::local::display::human_duration;

/// The example plan, embedded at build time.
pub const DEMO_PLAN: &str = include_str!("../../plans/demo.yaml");

/// Validates, previews and plans the shipped example
/// (examples/plans/demo.yaml); with `--endpoint`, hibernates and wakes up a
/// small estate in an AWS emulator.
#[derive(Debug, Parser)]
#[command(name = "hibernator-demo", version, about)]
struct Args {
    /// Instant to preview from, RFC 3339 (default: now).
    #[arg(long, value_parser = render::parse_instant)]
    at: Option<DateTime<Utc>>,
    /// An AWS emulator on this machine (moto). With it, the demo creates a
    /// small estate there, hibernates and wakes it up with `hibernator run`'s
    /// code path and shows the before/after state. `scripts/demo.sh` starts
    /// one and sets this.
    #[arg(long, env = "HIBERNATOR_DEMO_ENDPOINT")]
    endpoint: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut stdout = std::io::stdout().lock();
    match run(&args, &mut stdout) {
        Ok(code) => code,
        Err(error) => {
            drop(stdout);
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<ExitCode> {
    writeln!(out, "== examples/plans/demo.yaml (embedded)")?;
    // The demo runs the built-in executors.
    let (docs, diagnostics) = render::diagnose(DEMO_PLAN, &ExecutorSet::new().catalog());
    for e in &diagnostics.errors {
        writeln!(out, "error: {e}")?;
    }
    for w in &diagnostics.warnings {
        writeln!(out, "warning: {w}")?;
    }
    let Some(docs) = docs.filter(|_| diagnostics.is_valid()) else {
        writeln!(out, "the embedded demo plan is invalid")?;
        return Ok(ExitCode::FAILURE);
    };
    writeln!(
        out,
        "valid: {} targets, {} schedule exception(s)\n",
        docs.plan.spec.targets.len(),
        docs.exceptions.len()
    )?;
    let schedule = CompiledSchedule::compile(&docs.plan.spec.schedule, &docs.exceptions)?;
    let at = args.at.unwrap_or_else(Utc::now);
    let tz = schedule.timezone();
    writeln!(
        out,
        "== schedule ({}), now {}: {}",
        tz.name(),
        at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
        schedule.state_at(at)
    )?;
    for t in schedule.transitions(at).take(6) {
        writeln!(
            out,
            "  {}  -> {}",
            t.at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
            t.to
        )?;
    }
    for operation in [Operation::Shutdown, Operation::Wakeup] {
        writeln!(out)?;
        let plan = ExecutionPlan::build(&docs.plan.spec, operation)?;
        render::write_plan(&plan, out)?;
    }
    let Some(endpoint) = &args.endpoint else {
        writeln!(
            out,
            "\nTo hibernate and wake up a real estate in an AWS emulator, run `bash scripts/demo.sh`."
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(
        out,
        "\n== creating the demo estate in the emulator at {endpoint}"
    )?;
    let state_dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(emulator::run_against_emulator(
        &docs,
        endpoint,
        state_dir.path(),
        out,
    ))?;
    writeln!(out, "\n== state of the estate")?;
    let mut table = render::table(&["Resource", "Before", "After shutdown", "After wake-up"]);
    for (resource, [before, asleep, after]) in &report.states {
        table.add_row(vec![
            resource.clone(),
            before.clone(),
            asleep.clone(),
            after.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "shutdown took {}, wake-up {}",
        human_duration(report.durations[0]),
        human_duration(report.durations[1])
    )?;
    if report.restored_exactly() {
        writeln!(out, "every resource is back exactly as it was")?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(out, "NOT restored exactly: see the table above")?;
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_runs_on_the_embedded_plan() {
        let args =
            Args::try_parse_from(["hibernator-demo", "--at", "2026-11-23T12:00:00+01:00"]).unwrap();
        let mut out = Vec::new();
        let code = run(&args, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS, "{out}");
        assert!(out.contains("valid: 4 targets"), "{out}");
        assert!(out.contains("shutdown plan, strategy DAG"), "{out}");
        assert!(out.contains("wakeup plan, strategy DAG"), "{out}");
    }
}
