//! Tests of the log formats: the exact text line, quoting, spans, colours
//! only when asked for, and JSON as one object per line.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::TimeZone;

use super::*;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
        .unwrap()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn at() -> FixedTime {
    FixedTime(Utc.with_ymd_and_hms(2026, 2, 1, 20, 5, 0).unwrap())
}

/// What `emit` logs in `format` (filter `debug`), with or without colours.
fn capture(format: LogFormat, ansi: bool, emit: impl FnOnce()) -> String {
    let out = Capture::default();
    let dispatch = dispatch_with_timer(format, EnvFilter::new("debug"), out.clone(), ansi, at());
    tracing::dispatcher::with_default(&dispatch, emit);
    out.text()
}

fn text(emit: impl FnOnce()) -> String {
    capture(LogFormat::Text, false, emit)
}

#[test]
fn a_text_line_is_time_level_message_and_fields() {
    let out = text(|| {
        tracing::info!(
            plan = "dev",
            resources = 3,
            dry = false,
            error = %"connection refused",
            "runner starting"
        );
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [INFO] runner starting plan=dev resources=3 dry=false error=\"connection refused\"\n"
    );
}

#[test]
fn every_level_is_bracketed() {
    let out = text(|| {
        tracing::error!("e");
        tracing::warn!("w");
        tracing::debug!(n = -1, "d");
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [ERROR] e\n\
         2026-02-01T20:05:00Z [WARN] w\n\
         2026-02-01T20:05:00Z [DEBUG] d n=-1\n"
    );
}

#[test]
fn values_that_need_it_are_quoted_with_escapes() {
    let out = text(|| {
        tracing::info!(
            empty = "",
            quote = "say \"hi\"",
            eq = "a=b",
            multi = "one\ntwo",
            path = "/var/run/secrets/stream/token",
            ids = ?["a", "b"],
            "fields"
        );
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [INFO] fields empty=\"\" quote=\"say \\\"hi\\\"\" eq=\"a=b\" \
         multi=\"one\\ntwo\" path=/var/run/secrets/stream/token ids=\"[\\\"a\\\", \\\"b\\\"]\"\n"
    );
}

#[test]
fn span_fields_follow_the_event_fields_outermost_first() {
    let out = text(|| {
        let plan = tracing::info_span!("plan", plan = "dev", namespace = "team-a");
        let _plan = plan.enter();
        let target = tracing::info_span!("target", target = "db");
        let _target = target.enter();
        tracing::warn!(attempt = 2, "retrying");
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [WARN] retrying attempt=2 plan=dev namespace=team-a target=db\n"
    );
}

#[test]
fn events_of_other_crates_name_their_target() {
    let out = text(|| {
        tracing::info!(target: "kube_runtime::controller", "reconciling");
        tracing::info!(target: "hibernator_operator::runner", "ours");
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [INFO] reconciling target=kube_runtime::controller\n\
         2026-02-01T20:05:00Z [INFO] ours\n"
    );
}

#[test]
fn errors_print_their_source_chain() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the plan")]
    struct Outer(#[source] io::Error);
    let error = Outer(io::Error::other("connection reset"));
    let out = text(|| {
        tracing::warn!(
            error = &error as &(dyn std::error::Error + 'static),
            "failed"
        );
    });
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z [WARN] failed error=\"cannot read the plan: connection reset\"\n"
    );
}

#[test]
fn text_without_ansi_has_no_escape_codes_even_from_messages() {
    let out = text(|| {
        tracing::error!(
            detail = "\u{1b}[31mred\u{1b}[0m",
            "first\nsecond \u{1b}[1mbold"
        );
    });
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(
        out.starts_with("2026-02-01T20:05:00Z [ERROR] first\\nsecond \\u{1b}[1mbold detail="),
        "{out:?}"
    );
}

#[test]
fn ansi_colours_only_the_level_when_asked_for() {
    let out = capture(LogFormat::Text, true, || tracing::info!(k = "v", "hello"));
    assert_eq!(
        out,
        "2026-02-01T20:05:00Z \u{1b}[32m[INFO]\u{1b}[0m hello k=v\n"
    );
}

#[test]
fn the_default_clock_is_utc_with_seconds_and_z() {
    let out = Capture::default();
    let dispatch = dispatch(LogFormat::Text, EnvFilter::new("info"), out.clone(), false);
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("now"));
    let line = out.text();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "[INFO] now\n");
    let parsed = DateTime::parse_from_rfc3339(time).unwrap();
    assert_eq!(parsed.offset().local_minus_utc(), 0);
    assert!(
        time.ends_with('Z') && time.len() == "2026-02-01T20:05:00Z".len(),
        "{time}"
    );
}

#[test]
fn json_is_one_object_per_line() {
    let out = capture(LogFormat::Json, true, || {
        let span = tracing::info_span!("target", target = "db");
        let _span = span.enter();
        tracing::info!(plan = "dev", "runner starting");
        tracing::warn!(error = %"multi\nline", "cannot connect");
    });
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value.is_object(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["fields"]["message"], "runner starting");
    assert_eq!(first["fields"]["plan"], "dev");
    assert_eq!(first["span"]["target"], "db");
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["fields"]["error"], "multi\nline");
}

#[test]
fn formats_parse_from_their_flag_values() {
    use clap::ValueEnum;
    for format in [LogFormat::Json, LogFormat::Text] {
        assert_eq!(LogFormat::from_str(format.as_str(), false), Ok(format));
        assert_eq!(format.to_string(), format.as_str());
    }
    assert!(LogFormat::from_str("pretty", false).is_err());
}

fn parse(args: &[&str]) -> Result<crate::cli::Command, clap::Error> {
    use clap::Parser;
    let argv = std::iter::once("hibernator").chain(args.iter().copied());
    crate::cli::Cli::try_parse_from(argv).map(|cli| cli.command)
}

/// `hibernator controller …`: its own format and the one its runner Jobs get.
fn controller(args: &[&str]) -> (LogFormat, Option<String>, serde_json::Value) {
    let argv: Vec<&str> = std::iter::once("controller")
        .chain(args.iter().copied())
        .collect();
    match parse(&argv) {
        Ok(crate::cli::Command::Controller(args)) => {
            let config = args.config().unwrap();
            let described = args.describe(&config);
            (args.log_format, config.runner.log_format, described)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_controller_logs_json_and_passes_the_runner_format_to_jobs() {
    let (own, runners, described) = controller(&[]);
    assert_eq!(
        (own, runners),
        (LogFormat::Json, None),
        "runners: their default"
    );
    assert_eq!(described["logFormat"], "json");
    assert_eq!(described["runner"]["logFormat"], serde_json::Value::Null);

    let (own, runners, _) = controller(&["--log-format=text"]);
    assert_eq!((own, runners), (LogFormat::Text, None));

    let (own, runners, described) =
        controller(&["--log-format", "text", "--runner-log-format", "json"]);
    assert_eq!((own, runners.as_deref()), (LogFormat::Text, Some("json")));
    assert_eq!(described["logFormat"], "text");
    assert_eq!(described["runner"]["logFormat"], "json");

    for flag in ["--log-format", "--runner-log-format"] {
        let error = parse(&["controller", flag, "pretty"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(flag) && error.contains("json") && error.contains("text"),
            "{error}"
        );
    }
}

#[test]
fn the_webhook_logs_text_unless_told_otherwise() {
    let format = |args: &[&str]| match parse(args) {
        Ok(crate::cli::Command::Webhook(args)) => args.log_format,
        other => panic!("{other:?}"),
    };
    assert_eq!(format(&["webhook"]), LogFormat::Text);
    assert_eq!(format(&["webhook", "--log-format=json"]), LogFormat::Json);
    let error = parse(&["webhook", "--log-format", "JSON!"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--log-format"), "{error}");
}

#[test]
fn the_runner_takes_the_log_format_flag() {
    let required = [
        "runner",
        "--plan",
        "dev",
        "--namespace",
        "team-a",
        "--target",
        "db",
        "--operation",
        "shutdown",
        "--cycle-id",
        "c1",
    ];
    let format = |extra: &[&str]| {
        let argv: Vec<&str> = required.iter().chain(extra).copied().collect();
        match parse(&argv) {
            Ok(crate::cli::Command::Runner(args)) => args.log_format,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(format(&[]), None, "unset: the runner's default");
    assert_eq!(crate::runner::DEFAULT_LOG_FORMAT, LogFormat::Text);
    assert_eq!(format(&["--log-format=json"]), Some(LogFormat::Json));
}
