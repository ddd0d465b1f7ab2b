//! Log output of the long-running commands (`controller`, `runner`,
//! `webhook`): one line per event on stdout, as JSON or as plain text.
//!
//! The text format is what `kubectl logs` shows a human:
//!
//! ```text
//! 2026-02-01T20:05:00Z [INFO] runner starting plan=dev target=db operation=shutdown
//! 2026-02-01T20:05:03Z [WARN] cannot connect to the streaming endpoint: logging to stdout only error="connection refused"
//! ```
//!
//! UTC time with seconds precision, the level in brackets, the message, then
//! the event's fields and the fields of its spans (outermost first) as
//! `key=value`; a value with spaces, quotes, `=` or control characters is
//! quoted with Rust string escapes. Events of other crates (kube, hyper, the
//! AWS SDK) end with `target=<module>`. The level is coloured only when the
//! subscriber was built with ANSI on, which [`start`] does only when stdout is
//! a terminal and `NO_COLOR` is unset: pod logs never carry escape codes.
//!
//! The JSON format is tracing-subscriber's: one object per line with
//! `timestamp`, `level`, `fields` (including `message`), `target` and the
//! spans.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use chrono::{DateTime, SecondsFormat, Utc};
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Environment variable of `--log-format` (the controller sets it on runner Jobs).
pub const ENV_LOG_FORMAT: &str = hibernator_core::wellknown::ENV_LOG_FORMAT;

/// How a service logs (filtered by `RUST_LOG`, default `info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log pipelines.
    Json,
    /// `2026-02-01T20:05:00Z [INFO] message key=value`, for humans.
    Text,
}

impl LogFormat {
    /// The flag value (`json`, `text`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether stdout should get colours: it is a terminal and `NO_COLOR` is
/// unset or empty (<https://no-color.org>).
pub fn stdout_wants_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The subscriber of a service: `format` written to `writer`, filtered by
/// `filter`; `ansi` colours the text format's level (JSON never has colours).
pub fn dispatch<W>(format: LogFormat, filter: EnvFilter, writer: W, ansi: bool) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    dispatch_with_timer(format, filter, writer, ansi, UtcSeconds)
}

/// [`dispatch`] with another clock for the text format's timestamps.
pub fn dispatch_with_timer<W, T>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
    timer: T,
) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    T: FormatTime + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Dispatch::new(builder.json().with_ansi(false).finish()),
        LogFormat::Text => Dispatch::new(
            builder
                .with_ansi(ansi)
                .event_format(TextFormat::with_timer(timer))
                .fmt_fields(TextFields)
                .finish(),
        ),
    }
}

/// Installs the process-wide subscriber: `format` on stdout, filtered by
/// `RUST_LOG` (default `info`), coloured only on a terminal. Events of the
/// `log` crate are forwarded too. A second call in one process keeps the
/// first subscriber.
pub fn start(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Already initialized (a second command in one process) is fine.
    let _ = dispatch(format, filter, std::io::stdout, stdout_wants_colour()).try_init();
}

/// RFC 3339 UTC time with seconds precision and `Z`: `2026-02-01T20:05:00Z`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UtcSeconds;

impl FormatTime for UtcSeconds {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_time(w, Utc::now())
    }
}

/// A fixed instant (tests and examples of the text format).
#[derive(Clone, Copy, Debug)]
pub struct FixedTime(pub DateTime<Utc>);

impl FormatTime for FixedTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_time(w, self.0)
    }
}

fn write_time(w: &mut Writer<'_>, time: DateTime<Utc>) -> fmt::Result {
    w.write_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The text event format (see the [module documentation](self)); `T` writes
/// the timestamp.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFormat<T = UtcSeconds> {
    timer: T,
}

impl<T: FormatTime> TextFormat<T> {
    /// The text format with another clock.
    pub fn with_timer(timer: T) -> Self {
        Self { timer }
    }
}

/// Crates whose events need no `target=`: ours (an embedder's binary adds
/// its own crates; their events just carry the target).
const OWN_TARGET_PREFIX: &str = "hibernator";

impl<S, N, T> FormatEvent<S, N> for TextFormat<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        self.timer.format_time(&mut writer)?;
        let level = *metadata.level();
        if writer.has_ansi_escapes() {
            write!(writer, " {}[{level}]\x1b[0m", level_colour(level))?;
        } else {
            write!(writer, " [{level}]")?;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if let Some(message) = &fields.message {
            writer.write_char(' ')?;
            write_escaped(&mut writer, message)?;
        }
        if !fields.line.is_empty() {
            write!(writer, " {}", fields.line)?;
        }
        let target = fields.log_target.as_deref().unwrap_or(metadata.target());
        if !target.starts_with(OWN_TARGET_PREFIX) {
            writer.write_str(" target=")?;
            write_value(&mut writer, target)?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>()
                    && !formatted.is_empty()
                {
                    write!(writer, " {formatted}")?;
                }
            }
        }
        writeln!(writer)
    }
}

fn level_colour(level: Level) -> &'static str {
    match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

/// Formats fields (of spans; events use the same rules) as `key=value`
/// separated by spaces.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextFields;

impl<'writer> FormatFields<'writer> for TextFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = KeyValues::default();
        fields.record(&mut visitor);
        writer.write_str(&visitor.line)
    }
}

/// Collects `key=value` pairs into one line.
#[derive(Default)]
struct KeyValues {
    line: String,
}

impl KeyValues {
    fn push(&mut self, name: &str, value: fmt::Arguments<'_>, quote_if_needed: bool) {
        if name.starts_with("log.") {
            // tracing-log's metadata of `log` records (module path, file, line).
            return;
        }
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        self.line.push_str(name);
        self.line.push('=');
        if quote_if_needed {
            let text = value.to_string();
            // Writing to a String cannot fail.
            let _ = write_value(&mut self.line, &text);
        } else {
            let _ = self.line.write_fmt(value);
        }
    }
}

impl Visit for KeyValues {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), format_args!("{value}"), true);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field.name(), format_args!("{value}"), false);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field.name(), format_args!("{}", ErrorChain(value)), true);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here too (their Debug is their Display).
        self.push(field.name(), format_args!("{value:?}"), true);
    }
}

/// An event's message, its `log` target if it came from the `log` crate,
/// and its other fields.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    log_target: Option<String>,
    line: String,
}

impl EventFields {
    fn fields(&mut self) -> KeyValues {
        KeyValues {
            line: std::mem::take(&mut self.line),
        }
    }

    fn record_with(&mut self, record: impl FnOnce(&mut KeyValues)) {
        let mut fields = self.fields();
        record(&mut fields);
        self.line = fields.line;
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_string()),
            "log.target" => self.log_target = Some(value.to_string()),
            _ => self.record_with(|f| f.record_str(field, value)),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            _ => self.record_with(|f| f.record_debug(field, value)),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_with(|f| f.record_i64(field, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_with(|f| f.record_u64(field, value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.record_with(|f| f.record_i128(field, value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record_with(|f| f.record_u128(field, value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_with(|f| f.record_f64(field, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_with(|f| f.record_bool(field, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_with(|f| f.record_error(field, value));
    }
}

/// An error and its sources: `outer: inner: root`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Writes `text` bare, or quoted with Rust string escapes when it is empty
/// or holds whitespace, `"`, `=` or control characters.
fn write_value(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let needs_quotes = text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if needs_quotes {
        write!(out, "{text:?}")
    } else {
        out.write_str(text)
    }
}

/// Writes a message as it is, except control characters (newlines, escape
/// codes), which are escaped so every event stays one line without escapes.
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(out, "{}", c.escape_debug())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "logging_tests.rs"]
mod tests;
