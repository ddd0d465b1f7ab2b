//! Log output of the built binary as a pod sees it (stdout is a pipe, not a
//! terminal), and `--log-format` / `HIBERNATOR_LOG_FORMAT` as the processes
//! read them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hibernator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hibernator"));
    command
        .env_remove("HIBERNATOR_LOG_FORMAT")
        .env_remove("HIBERNATOR_RUNNER_LOG_FORMAT")
        .env("RUST_LOG", "info");
    command
}

/// A kubeconfig naming an API server on a port nothing listens on, so the
/// runner starts, logs, fails reading the plan and exits 1.
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u, namespace: team-a}}}}]\n"
        ),
    )
    .expect("write the kubeconfig");
    path
}

/// Runs `hibernator runner` for a target whose plan cannot be read, with
/// `HIBERNATOR_LOG_FORMAT=format` (unset: `None`).
fn run_runner(format: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = hibernator();
    command
        .env("KUBECONFIG", unreachable_kubeconfig(dir.path()))
        .env("HIBERNATOR_PLAN", "dev")
        .env("HIBERNATOR_PLAN_NAMESPACE", "team-a")
        .env("HIBERNATOR_TARGET", "orders db")
        .env("HIBERNATOR_OPERATION", "shutdown")
        .env("HIBERNATOR_CYCLE_ID", "c1")
        .env("HIBERNATOR_TERMINATION_LOG", dir.path().join("termination"))
        .arg("runner");
    if let Some(format) = format {
        command.env("HIBERNATOR_LOG_FORMAT", format);
    }
    let output = command.output().expect("run hibernator runner");
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `2026-02-01T20:05:00Z [INFO] rest` → `("2026-02-01T20:05:00Z", "INFO", "rest")`.
fn split_text_line(line: &str) -> (&str, &str, &str) {
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    let (level, message) = rest.split_once("] ").unwrap_or_else(|| panic!("{line:?}"));
    let level = level
        .strip_prefix('[')
        .unwrap_or_else(|| panic!("{line:?}"));
    (time, level, message)
}

#[test]
fn the_runner_logs_plain_text_lines_to_a_pipe_by_default() {
    let output = run_runner(None);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains('\u{1b}'), "escape codes in {stdout:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 2, "{stdout}");
    for line in &lines {
        let (time, level, _) = split_text_line(line);
        chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(
            time.ends_with('Z') && time.len() == "2026-02-01T20:05:00Z".len(),
            "{line:?}"
        );
        assert!(["INFO", "WARN", "ERROR"].contains(&level), "{line:?}");
    }
    let (_, level, rest) = split_text_line(lines[0]);
    assert_eq!(level, "INFO");
    assert_eq!(
        rest,
        "runner starting plan=dev namespace=team-a target=\"orders db\" operation=shutdown \
         cycle=c1 streaming=false"
    );
    let (_, level, rest) = split_text_line(lines.last().unwrap());
    assert_eq!(level, "ERROR");
    assert!(
        rest.starts_with("runner failed error=\"cannot read HibernatePlan team-a/dev"),
        "{rest}"
    );
}

#[test]
fn the_runner_logs_one_json_object_per_line_when_asked() {
    let output = run_runner(Some("json"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains('\u{1b}'), "escape codes in {stdout:?}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert!(events.len() >= 2, "{stdout}");
    assert!(events.iter().all(serde_json::Value::is_object));
    assert_eq!(events[0]["level"], "INFO");
    assert_eq!(events[0]["fields"]["message"], "runner starting");
    assert_eq!(events[0]["fields"]["target"], "orders db");
    let last = events.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["fields"]["message"], "runner failed");
    let error = last["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("cannot read HibernatePlan team-a/dev"),
        "{last}"
    );
}

#[test]
fn a_bad_log_format_is_refused_naming_the_flag() {
    let output = hibernator()
        .env("HIBERNATOR_LOG_FORMAT", "pretty")
        .args(["controller", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log-format"), "{stderr}");
}

fn dry_run(command: &mut Command) -> serde_json::Value {
    let output = command
        .arg("--dry-run")
        .output()
        .expect("run hibernator --dry-run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    })
}

#[test]
fn the_controller_reads_both_formats_from_its_environment() {
    let config = dry_run(hibernator().arg("controller"));
    assert_eq!(config["logFormat"], "json");
    assert_eq!(config["runner"]["logFormat"], serde_json::Value::Null);

    let config = dry_run(
        hibernator()
            .env("HIBERNATOR_LOG_FORMAT", "text")
            .arg("controller"),
    );
    assert_eq!(config["logFormat"], "text");
    assert_eq!(config["runner"]["logFormat"], serde_json::Value::Null);

    let config = dry_run(
        hibernator()
            .env("HIBERNATOR_LOG_FORMAT", "text")
            .env("HIBERNATOR_RUNNER_LOG_FORMAT", "json")
            .arg("controller"),
    );
    assert_eq!(config["logFormat"], "text");
    assert_eq!(config["runner"]["logFormat"], "json");

    let config = dry_run(
        hibernator()
            .env("HIBERNATOR_LOG_FORMAT", "text")
            .args(["controller", "--log-format=json"]),
    );
    assert_eq!(config["logFormat"], "json", "the flag wins");
}

#[test]
fn the_webhook_reads_its_format_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let webhook = |format: Option<&str>| {
        let mut command = hibernator();
        if let Some(format) = format {
            command.env("HIBERNATOR_LOG_FORMAT", format);
        }
        command
            .arg("webhook")
            .arg("--cert-file")
            .arg(&cert_file)
            .arg("--key-file")
            .arg(&key_file);
        dry_run(&mut command)
    };
    assert_eq!(webhook(None)["logFormat"], "text");
    assert_eq!(webhook(Some("json"))["logFormat"], "json");
}
