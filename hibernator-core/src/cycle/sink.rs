//! [`EventSink`]: executor logs and progress as [`CycleEvent`]s.

use tokio::sync::mpsc::UnboundedSender;

use super::CycleEvent;
use crate::executor::{ExecutionContext, LogLevel, LogSink, ProgressSink};

/// Forwards executor log lines and progress reports to a cycle's event
/// channel, tagged with the context's target. A closed channel drops them.
#[derive(Clone, Debug)]
pub struct EventSink {
    events: UnboundedSender<CycleEvent>,
}

impl EventSink {
    /// A sink sending to `events`.
    pub fn new(events: UnboundedSender<CycleEvent>) -> Self {
        Self { events }
    }
}

impl LogSink for EventSink {
    fn log(&self, ctx: &ExecutionContext, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let mut line = message.to_string();
        for (key, value) in fields {
            line.push_str(&format!(" {key}={value:?}"));
        }
        // A closed channel means nobody listens any more; the cycle goes on.
        let _ = self.events.send(CycleEvent::Log {
            target: ctx.target().to_string(),
            level,
            message: line,
        });
    }
}

impl ProgressSink for EventSink {
    fn report(&self, ctx: &ExecutionContext, percent: u8, message: &str) {
        let _ = self.events.send(CycleEvent::Progress {
            target: ctx.target().to_string(),
            percent,
            message: message.to_string(),
        });
    }
}
