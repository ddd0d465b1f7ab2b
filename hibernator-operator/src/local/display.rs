//! Live display of a cycle's events: progress bars on a terminal, plain
//! lines otherwise, or nothing.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use hibernator_core::cycle::{CycleControl, CycleEvent};
use hibernator_core::duration::format_duration;
use hibernator_core::executor::LogLevel;
use hibernator_core::types::{ExecutionState, Target};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

/// How events are shown while a cycle runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayMode {
    /// `indicatif` bars on stderr: a spinner per running target and an overall bar.
    Bars,
    /// One plain line per event on the output (`[web] started`).
    Lines,
    /// Nothing (e.g. `--output json` in a pipeline).
    Quiet,
}

/// `2.1s` below a minute, `2m5s` above.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format_duration(d)
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The plain line of an event (`None`: not worth a line, e.g. debug logs).
pub fn event_line(event: &CycleEvent, control: &CycleControl) -> Option<String> {
    Some(match event {
        CycleEvent::Started { target } => format!("[{target}] started"),
        CycleEvent::Progress {
            target,
            percent,
            message,
        } => format!("[{target}] {percent}% {message}"),
        CycleEvent::Log {
            target,
            level,
            message,
        } => match level {
            LogLevel::Error | LogLevel::Warn | LogLevel::Info => {
                format!("[{target}] {}: {message}", level.as_str())
            }
            LogLevel::Debug | LogLevel::Trace => return None,
        },
        CycleEvent::Finished {
            target,
            state,
            message,
            resources,
            attempts,
            duration,
        } => {
            let retries = if *attempts > 1 {
                format!(", {attempts} attempts")
            } else {
                String::new()
            };
            if *state == ExecutionState::Completed {
                format!(
                    "[{target}] completed in {} ({}{retries})",
                    human_duration(*duration),
                    count(resources.len(), "resource")
                )
            } else {
                format!(
                    "[{target}] failed after {}{retries}: {}",
                    human_duration(*duration),
                    message.as_deref().unwrap_or("unknown error")
                )
            }
        }
        CycleEvent::Aborted { target, reason } => format!("[{target}] aborted: {reason}"),
        CycleEvent::Stopping { reason } => {
            if control.is_cancelled() {
                format!("stopping: {reason}")
            } else {
                format!(
                    "stopping: {reason}; finishing running targets; press Ctrl-C again to cancel them"
                )
            }
        }
        // Events a newer hibernator-core adds are not shown.
        _ => return None,
    })
}

/// Renders the events of one cycle.
pub struct Display {
    mode: DisplayMode,
    control: CycleControl,
    bars: Option<Bars>,
    failed_write: Option<std::io::Error>,
}

impl Display {
    /// A display for a cycle over `targets`; `Bars` draw to stderr.
    pub fn new(mode: DisplayMode, targets: &[Target], control: CycleControl) -> Self {
        Self::with_target(mode, targets, control, ProgressDrawTarget::stderr())
    }

    /// Like [`new`](Self::new) with an explicit draw target for the bars.
    pub fn with_target(
        mode: DisplayMode,
        targets: &[Target],
        control: CycleControl,
        draw: ProgressDrawTarget,
    ) -> Self {
        let bars = (mode == DisplayMode::Bars).then(|| Bars::new(targets, draw));
        Self {
            mode,
            control,
            bars,
            failed_write: None,
        }
    }

    /// Shows every event until the channel closes (the cycle ended); `out`
    /// receives the plain lines. A failed write stops the lines (the cycle
    /// goes on) and is returned at the end.
    pub async fn consume(
        mut self,
        mut events: UnboundedReceiver<CycleEvent>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        while let Some(event) = events.recv().await {
            self.show(&event, out);
        }
        if let Some(bars) = &self.bars {
            bars.overall.finish_and_clear();
        }
        match self.failed_write.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn show(&mut self, event: &CycleEvent, out: &mut dyn Write) {
        match self.mode {
            DisplayMode::Quiet => {}
            DisplayMode::Lines => {
                if self.failed_write.is_some() {
                    return;
                }
                if let Some(line) = event_line(event, &self.control)
                    && let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush())
                {
                    self.failed_write = Some(error);
                }
            }
            DisplayMode::Bars => {
                if let Some(bars) = &mut self.bars {
                    bars.show(event, &self.control);
                }
            }
        }
    }
}

/// The `indicatif` state: one spinner per running target and the overall bar.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    running: HashMap<String, ProgressBar>,
    executors: HashMap<String, String>,
    spinner: ProgressStyle,
}

impl Bars {
    fn new(targets: &[Target], draw: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(draw);
        let total = u64::try_from(targets.len()).unwrap_or(u64::MAX);
        let overall_style = ProgressStyle::with_template(
            "{elapsed_precise:.dim} [{bar:30.cyan/blue}] {pos}/{len} targets finished",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let overall = multi.add(ProgressBar::new(total).with_style(overall_style));
        let spinner = ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Self {
            multi,
            overall,
            running: HashMap::new(),
            executors: targets
                .iter()
                .map(|t| (t.name.clone(), t.kind.clone()))
                .collect(),
            spinner,
        }
    }

    fn println(&self, line: &str) {
        // A terminal that went away is not the cycle's problem.
        let _ = self.multi.println(line);
    }

    fn show(&mut self, event: &CycleEvent, control: &CycleControl) {
        match event {
            CycleEvent::Started { target } => {
                let executor = self.executors.get(target).cloned().unwrap_or_default();
                let bar = self.multi.insert_before(
                    &self.overall,
                    ProgressBar::new_spinner().with_style(self.spinner.clone()),
                );
                bar.set_prefix(format!("{target} ({executor})"));
                bar.set_message("starting");
                bar.enable_steady_tick(Duration::from_millis(120));
                self.running.insert(target.clone(), bar);
            }
            CycleEvent::Progress {
                target,
                percent,
                message,
            } => {
                if let Some(bar) = self.running.get(target) {
                    bar.set_message(format!("{percent}% {message}"));
                }
            }
            CycleEvent::Log { level, .. } => {
                if *level <= LogLevel::Warn
                    && let Some(line) = event_line(event, control)
                {
                    self.println(&line);
                }
            }
            CycleEvent::Finished { target, .. } => {
                if let Some(bar) = self.running.remove(target) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.overall.inc(1);
                if let Some(line) = event_line(event, control) {
                    self.println(&line);
                }
            }
            CycleEvent::Aborted { .. } => {
                self.overall.inc(1);
                if let Some(line) = event_line(event, control) {
                    self.println(&line);
                }
            }
            CycleEvent::Stopping { .. } => {
                if let Some(line) = event_line(event, control) {
                    self.println(&line);
                }
            }
            _ => {}
        }
    }
}
