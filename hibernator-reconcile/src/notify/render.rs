//! Message bodies: a default minijinja template per sink type, overridable
//! per sink with `template:`. Templates run in minijinja's sandbox (no
//! file, network or code access; bounded by fuel) and must render JSON.
//!
//! Variables: `event`, `severity`, `namespace`, `plan`, `cycle`,
//! `operation`, `target`, `detail`, `at` (RFC 3339), `message`, `title`,
//! `key`, `targets` (list of `{target, executor, state, duration_seconds,
//! resources, error}`), `target_lines` (the targets as Markdown lines),
//! `color` (hex by severity) and `notification` (all of the above but
//! `target_lines`/`color`, as one object: `{{ notification|tojson }}`).

use hibernator_core::types::SinkType;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::json;

use super::Notice;

/// Upper bound of template instructions per render (a loop cannot spin).
const FUEL: u64 = 50_000;

/// Slack: a Block Kit message (header, message, per-target lines, context).
pub const DEFAULT_SLACK: &str = r#"{"text": {{ title|tojson }},
 "blocks": [
  {"type": "header", "text": {"type": "plain_text", "text": {{ title|tojson }}}},
  {"type": "section", "text": {"type": "mrkdwn", "text": {{ message|tojson }}}},
  {% if target_lines %}{"type": "section", "text": {"type": "mrkdwn", "text": {{ target_lines|tojson }}}},
  {% endif %}{"type": "context", "elements": [{"type": "mrkdwn", "text": {{ (event ~ " · " ~ severity ~ " · " ~ namespace ~ "/" ~ plan ~ " · cycle " ~ cycle ~ " · " ~ at)|tojson }}}]}
 ]}"#;

/// Teams (and other MessageCard receivers): a MessageCard with facts.
pub const DEFAULT_TEAMS: &str = r#"{"@type": "MessageCard", "@context": "https://schema.org/extensions",
 "summary": {{ title|tojson }}, "themeColor": {{ color|tojson }}, "title": {{ title|tojson }},
 "text": {{ message|tojson }},
 "sections": [
  {"facts": [
   {"name": "Plan", "value": {{ (namespace ~ "/" ~ plan)|tojson }}},
   {"name": "Event", "value": {{ event|tojson }}},
   {"name": "Severity", "value": {{ severity|tojson }}},
   {"name": "Cycle", "value": {{ cycle|tojson }}},
   {"name": "At", "value": {{ at|tojson }}}
  ]}{% if target_lines %},
  {"text": {{ target_lines|tojson }}}{% endif %}
 ]}"#;

/// Generic webhook: the notification as one JSON object.
pub const DEFAULT_WEBHOOK: &str = "{{ notification|tojson }}";

/// The default template of a sink type.
pub fn default_template(kind: SinkType) -> &'static str {
    match kind {
        SinkType::Slack => DEFAULT_SLACK,
        SinkType::Teams => DEFAULT_TEAMS,
        SinkType::Webhook => DEFAULT_WEBHOOK,
    }
}

/// A template that failed to compile or render, or did not render JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What went wrong (the template's line where known).
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

/// The template variables of `notice`.
pub fn context(notice: &Notice) -> serde_json::Value {
    let notification = json!({
        "event": notice.event.as_str(),
        "severity": notice.severity.as_str(),
        "namespace": notice.namespace,
        "plan": notice.plan,
        "cycle": notice.cycle,
        "operation": notice.operation.map(|o| o.as_str()),
        "target": notice.target,
        "detail": notice.detail,
        "at": notice.at.to_rfc3339(),
        "message": notice.message,
        "title": notice.title(),
        "key": notice.key(),
        "targets": notice.targets,
    });
    let target_lines: Vec<String> = notice
        .targets
        .iter()
        .map(|t| {
            let mut line = format!("• {} ({}): {}", t.target, t.executor, t.state);
            if let Some(d) = t.duration_seconds {
                line.push_str(&format!(", {d}s"));
            }
            if let Some(r) = t.resources {
                line.push_str(&format!(", {r} resources"));
            }
            if let Some(e) = &t.error {
                line.push_str(&format!(": {e}"));
            }
            line
        })
        .collect();
    let color = match notice.severity {
        hibernator_core::types::Severity::Info => "2EB886",
        hibernator_core::types::Severity::Warning => "DAA038",
        hibernator_core::types::Severity::Error => "A30200",
    };
    let mut vars = notification.clone();
    if let Some(map) = vars.as_object_mut() {
        map.insert("target_lines".into(), json!(target_lines.join("\n")));
        map.insert("color".into(), json!(color));
        map.insert("notification".into(), notification);
    }
    vars
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(32);
    env
}

/// Renders the body of `notice` for a sink of `kind` with `template` (the
/// sink's override) or the default; the result is checked to be JSON.
pub fn render(
    kind: SinkType,
    template: Option<&str>,
    notice: &Notice,
) -> Result<String, TemplateError> {
    let source = template.unwrap_or_else(|| default_template(kind));
    let env = environment();
    let compiled = env.template_from_str(source).map_err(describe)?;
    let body = compiled
        .render(Value::from(Serde(context(notice))))
        .map_err(describe)?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
        return Err(TemplateError {
            message: format!(
                "the rendered body is not JSON ({e}); use the `tojson` filter for values"
            ),
        });
    }
    Ok(body)
}

/// Checks a template: it compiles and renders JSON for a sample failed
/// cycle (what the admission webhook and the controller's `Ready` check run).
pub fn check_template(kind: SinkType, template: &str) -> Result<(), TemplateError> {
    render(kind, Some(template), &sample()).map(|_| ())
}

/// A sample event: a failed shutdown cycle with one failed target.
pub fn sample() -> Notice {
    use hibernator_core::types::{NotificationEvent, Operation, Severity};
    Notice {
        event: NotificationEvent::CycleFinished,
        severity: Severity::Error,
        namespace: "default".into(),
        plan: "sample".into(),
        cycle: "20260101-200000".into(),
        operation: Some(Operation::Shutdown),
        target: Some("database".into()),
        detail: Some("1".into()),
        at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        message: "shutdown cycle 20260101-200000 failed: 1 completed, 1 failed, 0 aborted".into(),
        targets: vec![super::TargetSummary {
            target: "database".into(),
            executor: "rds".into(),
            state: "Failed".into(),
            duration_seconds: Some(42),
            resources: None,
            error: Some("InvalidDBInstanceState".into()),
        }],
    }
}

fn describe(e: minijinja::Error) -> TemplateError {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    TemplateError { message }
}
