//! Configuration parsing, validation and `build_sinks`.

use std::io::Write;

use hibernator_streaming::sink::LogSink;

use hibernator_streaming::sink::{
    BackendKind, ConfigError, DatadogConfig, SecretSource, SinksConfig, SplunkConfig,
    build_batched_sinks_with_env, build_sinks_with_env,
};
use serde_json::json;

const DD_KEY: &str = "dd-secret-0123456789";
const HEC_TOKEN: &str = "hec-secret-abcdef";

fn env(name: &str) -> Option<String> {
    match name {
        "DATADOG_API_KEY" => Some(DD_KEY.to_string()),
        "SPLUNK_HEC_TOKEN" => Some(HEC_TOKEN.to_string()),
        "DATADOG_SITE" => Some("datadoghq.eu".to_string()),
        "HOSTNAME" => Some("hibernator-controller-7d9f".to_string()),
        "AWS_ACCESS_KEY_ID" => Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(value: serde_json::Value) -> SinksConfig {
    serde_json::from_value(value).unwrap()
}

fn journey() -> serde_json::Value {
    json!({
        "persistence": {
            "enabled": true,
            "backend": "s3",
            "s3": {"bucket": "hibernator-execution-logs", "prefix": "hibernation/", "retention": 90}
        },
        "datadog": {
            "enabled": true,
            "apiKey": "$DATADOG_API_KEY",
            "endpoint": "https://http-intake.logs.datadoghq.com/v1/input",
            "service": "hibernator-operator"
        },
        "splunk": {
            "enabled": true,
            "endpoint": "https://splunk.company.com:8088/services/collector",
            "token": "$SPLUNK_HEC_TOKEN",
            "source": "hibernator-controller"
        }
    })
}

fn invalid_field(error: ConfigError) -> String {
    match error {
        ConfigError::Invalid { field, .. }
        | ConfigError::MissingSecret { field, .. }
        | ConfigError::ObjectStore { field, .. }
        | ConfigError::FeatureDisabled { field, .. }
        | ConfigError::HttpClient { field, .. } => field,
        other => panic!("no field in {other}"),
    }
}

#[test]
fn the_journey_values_build_three_sinks() {
    let config = parse(journey());
    let persistence = config.persistence.as_ref().unwrap();
    assert_eq!(persistence.backend, BackendKind::S3);
    let options = persistence.to_options().unwrap();
    assert_eq!(options.retention_days, Some(90));
    assert_eq!(options.prefix, "hibernation/");
    let sinks = build_sinks_with_env(&config, &env).unwrap();
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    assert_eq!(names, vec!["object-store", "splunk", "datadog"]);

    let splunk = config.splunk.as_ref().unwrap().to_options(&env).unwrap();
    assert_eq!(splunk.token.expose(), HEC_TOKEN);
    assert_eq!(splunk.source, "hibernator-controller");
    assert_eq!(splunk.host, "hibernator-controller-7d9f");
    let datadog = config.datadog.as_ref().unwrap().to_options(&env).unwrap();
    assert_eq!(datadog.api_key.expose(), DD_KEY);
    assert_eq!(
        datadog.url.as_str(),
        "https://http-intake.logs.datadoghq.com/v1/input"
    );
}

#[test]
fn disabled_sections_build_nothing() {
    let mut value = journey();
    for section in ["persistence", "datadog", "splunk"] {
        value[section]["enabled"] = json!(false);
    }
    assert!(
        build_sinks_with_env(&parse(value), &no_env)
            .unwrap()
            .is_empty()
    );
    assert!(
        build_sinks_with_env(&SinksConfig::default(), &no_env)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn filesystem_backend_accepts_type_alias() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let config = parse(json!({
        "persistence": {
            "enabled": true,
            "type": "filesystem",
            "filesystem": {"path": root.to_str().unwrap(), "prefix": "hibernation", "retention": 7},
            "batchLines": 50,
            "flushInterval": "2s"
        }
    }));
    let sinks = build_sinks_with_env(&config, &no_env).unwrap();
    assert_eq!(sinks.len(), 1);
    assert!(root.is_dir(), "the root directory is created");
    let options = config.persistence.unwrap().to_options().unwrap();
    assert_eq!(options.batch_lines, 50);
    assert_eq!(options.flush_interval, std::time::Duration::from_secs(2));
    assert_eq!(options.retention_days, Some(7));
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        (
            json!({"persistence": {"enabled": true, "s3": {"bucket": " "}}}),
            "persistence.s3.bucket",
        ),
        (json!({"persistence": {"enabled": true}}), "persistence.s3"),
        (
            json!({"persistence": {"enabled": true, "backend": "filesystem"}}),
            "persistence.filesystem",
        ),
        (
            json!({"persistence": {"enabled": true, "s3": {"bucket": "b", "retention": 0}}}),
            "persistence.s3.retention",
        ),
        (
            json!({"persistence": {"enabled": true, "s3": {"bucket": "b"}, "batchLines": 0}}),
            "persistence.batchLines",
        ),
        (
            json!({"persistence": {"enabled": true, "s3": {"bucket": "b"}, "flushInterval": "10"}}),
            "persistence.flushInterval",
        ),
        (
            json!({"persistence": {"enabled": true, "s3": {"bucket": "b", "endpoint": "http://minio:9000"}}}),
            "persistence.s3.endpoint",
        ),
        (
            json!({"splunk": {"enabled": true, "endpoint": "splunk:8088"}}),
            "splunk.endpoint",
        ),
        (
            json!({"splunk": {"enabled": true, "endpoint": "ftp://splunk"}}),
            "splunk.endpoint",
        ),
        (
            json!({"splunk": {"enabled": true, "endpoint": "https://splunk", "timeout": "30"}}),
            "splunk.timeout",
        ),
        (
            json!({"splunk": {"enabled": true, "endpoint": "https://splunk", "maxRetries": 100}}),
            "splunk.maxRetries",
        ),
        (
            json!({"datadog": {"enabled": true, "endpoint": "not a url"}}),
            "datadog.endpoint",
        ),
        (
            json!({"datadog": {"enabled": true, "tags": ["env:prod", "a,b"]}}),
            "datadog.tags[1]",
        ),
    ];
    for (value, field) in cases {
        let error = build_sinks_with_env(&parse(value.clone()), &env)
            .err()
            .unwrap();
        assert!(error.to_string().starts_with(field), "{value}: {error}");
        assert_eq!(invalid_field(error), field, "{value}");
    }
}

#[test]
fn missing_credentials_name_the_source_but_not_a_value() {
    let error = build_sinks_with_env(
        &parse(json!({"splunk": {"enabled": true, "endpoint": "https://splunk:8088"}})),
        &no_env,
    )
    .err()
    .unwrap();
    assert!(matches!(&error, ConfigError::MissingSecret { field, .. } if field == "splunk.token"));
    assert!(error.to_string().contains("SPLUNK_HEC_TOKEN"), "{error}");

    let error = build_sinks_with_env(
        &parse(json!({"datadog": {"enabled": true, "apiKey": "${DD_KEY_FROM_SECRET}"}})),
        &env,
    )
    .err()
    .unwrap();
    assert!(
        matches!(&error, ConfigError::MissingSecret { field, .. } if field == "datadog.apiKey")
    );
    assert!(error.to_string().contains("DD_KEY_FROM_SECRET"), "{error}");
}

#[test]
fn secrets_are_read_from_files_and_never_shown() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{HEC_TOKEN}").unwrap();
    let config = SplunkConfig {
        enabled: true,
        endpoint: "https://splunk:8088".to_string(),
        token: Some(SecretSource::from(format!(
            "file:{}",
            file.path().display()
        ))),
        ..SplunkConfig::default()
    };
    let options = config.to_options(&no_env).unwrap();
    assert_eq!(options.token.expose(), HEC_TOKEN);
    assert!(!format!("{options:?}").contains(HEC_TOKEN));

    let literal = DatadogConfig {
        enabled: true,
        api_key: Some(SecretSource::from(DD_KEY.to_string())),
        ..DatadogConfig::default()
    };
    let shown = format!("{literal:?}");
    assert!(!shown.contains(DD_KEY), "{shown}");
    let options = literal.to_options(&env).unwrap();
    assert_eq!(options.api_key.expose(), DD_KEY);
    // DATADOG_SITE decides the intake when no endpoint is given.
    assert_eq!(
        options.url.as_str(),
        "https://http-intake.logs.datadoghq.eu/"
    );
    assert!(!format!("{options:?}").contains(DD_KEY));
    let sinks = build_sinks_with_env(
        &SinksConfig {
            datadog: Some(literal),
            ..SinksConfig::default()
        },
        &env,
    )
    .unwrap();
    assert!(!format!("{:?}", sinks[0].name()).contains(DD_KEY));
}

#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_needs_the_feature() {
    let config = parse(json!({"otlp": {"enabled": true, "endpoint": "http://collector:4317"}}));
    let error = build_sinks_with_env(&config, &no_env).err().unwrap();
    assert!(
        matches!(
            error,
            ConfigError::FeatureDisabled {
                feature: "otlp",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn built_sinks_persist_through_their_batcher_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = parse(json!({
        "persistence": {
            "enabled": true,
            "backend": "filesystem",
            "filesystem": {"path": dir.path().to_str().unwrap(), "prefix": "hibernation/"}
        }
    }));
    let sinks = build_batched_sinks_with_env(&config, &no_env).unwrap();
    assert_eq!(sinks.len(), 1);
    let lines: Vec<_> = (0..3)
        .map(|i| {
            crate::sinks::common::record(
                "exec-7",
                crate::sinks::common::at(2026, 2, 1, 20, 0, i),
                "hi",
            )
        })
        .collect();
    sinks[0].write_batch(&lines).await.unwrap();
    sinks[0].flush().await.unwrap();
    let content = std::fs::read_to_string(
        dir.path()
            .join("hibernation/2026-02-01/prod-offhours-ec2-exec-7.log"),
    )
    .unwrap();
    assert_eq!(content.lines().count(), 3);
    assert_eq!(sinks[0].stats().written, 3);
    assert_eq!(sinks[0].stats().dropped, 0);
}

#[test]
fn secret_sources_serialise_without_values() {
    for (raw, written) in [
        ("$DATADOG_API_KEY", "${DATADOG_API_KEY}"),
        ("${SPLUNK_HEC_TOKEN}", "${SPLUNK_HEC_TOKEN}"),
        (
            "file:/etc/hibernator/splunk/token",
            "file:/etc/hibernator/splunk/token",
        ),
        (DD_KEY, hibernator_streaming::sink::secret::REDACTED),
    ] {
        let source = SecretSource::from(raw.to_string());
        assert_eq!(serde_json::to_value(&source).unwrap(), json!(written));
    }
    assert_eq!(
        SecretSource::from("$DATADOG_API_KEY".to_string()),
        SecretSource::Env("DATADOG_API_KEY".to_string())
    );
}
