//! Datadog log intake forwarder against a local receiver.

use std::time::Duration;

use hibernator_streaming::sink::datadog::{MAX_ENTRIES, intake_endpoint, status_of};
use hibernator_streaming::sink::{DatadogOptions, DatadogSink, LogSink, Secret, SinkError};
use serde_json::Value;

use crate::sinks::common::{Receiver, at, fast_retry, record};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn options(url: &str) -> DatadogOptions {
    DatadogOptions {
        url: url.parse().unwrap(),
        api_key: Secret::new(KEY),
        service: "hibernator-operator".to_string(),
        source: "hibernator".to_string(),
        tags: vec!["env:staging".to_string(), "team:platform".to_string()],
        hostname: "controller-0".to_string(),
        timeout: Duration::from_secs(5),
        retry: fast_retry(2),
    }
}

#[tokio::test]
async fn posts_a_json_array_to_the_v2_intake() {
    let receiver = Receiver::start().await;
    receiver.script(&[(202, "{}")]);
    let sink = DatadogSink::new(options(&receiver.url())).unwrap();
    let mut line = record(
        "exec-123",
        at(2026, 2, 1, 20, 5, 30),
        "Scaling EC2 instances to zero",
    );
    line.level = "ERROR".to_string();
    line.fields
        .insert("instance".to_string(), "i-001".to_string());
    sink.write_batch(&[line]).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v2/logs");
    assert_eq!(request.header("dd-api-key").unwrap(), KEY);
    assert_eq!(request.header("content-type").unwrap(), "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let entries = body.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["ddsource"], "hibernator");
    assert_eq!(entry["service"], "hibernator-operator");
    assert_eq!(entry["hostname"], "controller-0");
    assert_eq!(entry["message"], "Scaling EC2 instances to zero");
    assert_eq!(entry["status"], "error");
    assert_eq!(
        entry["timestamp"],
        at(2026, 2, 1, 20, 5, 30).timestamp_millis()
    );
    assert_eq!(entry["execution_id"], "exec-123");
    assert_eq!(entry["fields"]["instance"], "i-001");
    let tags: Vec<&str> = entry["ddtags"].as_str().unwrap().split(',').collect();
    for tag in [
        "execution_id:exec-123",
        "kube_namespace:team-a",
        "plan:prod-offhours",
        "target:ec2",
        "env:staging",
        "team:platform",
    ] {
        assert!(tags.contains(&tag), "missing {tag} in {tags:?}");
    }
}

#[tokio::test]
async fn splits_at_1000_entries() {
    let receiver = Receiver::start().await;
    let sink = DatadogSink::new(options(&receiver.url())).unwrap();
    let records: Vec<_> = (0..2_500)
        .map(|i| record("exec-1", at(2026, 2, 1, 20, 0, 0), &format!("line {i}")))
        .collect();
    sink.write_batch(&records).await.unwrap();
    let requests = receiver.requests();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| serde_json::from_slice::<Vec<Value>>(&r.body).unwrap().len())
        .collect();
    assert_eq!(sizes, vec![MAX_ENTRIES, MAX_ENTRIES, 500]);
    let last: Vec<Value> = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(last[499]["message"], "line 2499");
}

#[tokio::test]
async fn splits_below_5_megabytes() {
    let receiver = Receiver::start().await;
    let sink = DatadogSink::new(options(&receiver.url())).unwrap();
    let big = "y".repeat(900 * 1024);
    let records: Vec<_> = (0..12)
        .map(|i| record("exec-1", at(2026, 2, 1, 20, 0, 0), &format!("{i} {big}")))
        .collect();
    sink.write_batch(&records).await.unwrap();
    let requests = receiver.requests();
    assert!(requests.len() >= 3, "{} requests", requests.len());
    let mut total = 0;
    for request in &requests {
        assert!(
            request.body.len() <= 5 * 1024 * 1024,
            "{} bytes",
            request.body.len()
        );
        total += serde_json::from_slice::<Vec<Value>>(&request.body)
            .unwrap()
            .len();
    }
    assert_eq!(total, 12);
}

#[tokio::test]
async fn keeps_a_full_intake_url_and_adds_the_v2_path_to_a_base() {
    let full: reqwest::Url = "https://http-intake.logs.datadoghq.com/v1/input"
        .parse()
        .unwrap();
    assert_eq!(intake_endpoint(&full), full);
    let base: reqwest::Url = "https://http-intake.logs.datadoghq.eu".parse().unwrap();
    assert_eq!(
        intake_endpoint(&base).as_str(),
        "https://http-intake.logs.datadoghq.eu/api/v2/logs"
    );
    assert_eq!(status_of("warn"), "warn");
    assert_eq!(status_of("DEBUG"), "debug");
    assert_eq!(status_of("something"), "info");
}

#[tokio::test]
async fn forbidden_is_permanent_and_keeps_the_key_secret() {
    let receiver = Receiver::start().await;
    receiver.script(&[(403, &format!(r#"{{"errors":["Forbidden: {KEY}"]}}"#))]);
    let sink = DatadogSink::new(options(&receiver.url())).unwrap();
    let error = sink
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SinkError::Permanent {
                sink: "datadog",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(receiver.requests().len(), 1);
    let shown = format!("{error} {error:?} {sink:?}");
    assert!(!shown.contains(KEY), "key leaked: {shown}");
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let receiver = Receiver::start().await;
    receiver.script(&[(429, "slow down")]);
    let sink = DatadogSink::new(options(&receiver.url())).unwrap();
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 2);
}
