//! Splunk HEC forwarder against a local receiver.

use std::time::Duration;

use hibernator_streaming::sink::splunk::event_endpoint;
use hibernator_streaming::sink::{LogSink, Secret, SinkError, SplunkOptions, SplunkSink};
use serde_json::Value;

use crate::sinks::common::{Receiver, at, closed_port_url, fast_retry, record};

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

fn options(url: &str) -> SplunkOptions {
    SplunkOptions {
        url: url.parse().unwrap(),
        token: Secret::new(TOKEN),
        source: "hibernator-controller".to_string(),
        sourcetype: "hibernator:runner".to_string(),
        index: Some("infra".to_string()),
        host: "controller-0".to_string(),
        timeout: Duration::from_secs(5),
        retry: fast_retry(2),
        max_batch_bytes: SplunkOptions::DEFAULT_MAX_BATCH_BYTES,
    }
}

#[tokio::test]
async fn posts_newline_delimited_events_with_the_hec_token() {
    let receiver = Receiver::start().await;
    let sink = SplunkSink::new(options(&format!("{}/services/collector", receiver.url()))).unwrap();
    let mut first = record(
        "exec-1",
        at(2026, 2, 1, 20, 5, 30),
        "Scaling EC2 instances to zero",
    );
    first
        .fields
        .insert("instance".to_string(), "i-001".to_string());
    let mut second = record("exec-1", at(2026, 2, 1, 20, 5, 31), "Instances stopped");
    second.level = "WARN".to_string();
    sink.write_batch(&[first, second]).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/services/collector/event");
    assert_eq!(
        request.header("authorization").unwrap(),
        format!("Splunk {TOKEN}")
    );
    assert_eq!(request.header("content-type").unwrap(), "application/json");
    let events: Vec<Value> = request
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    let event = &events[0];
    assert_eq!(
        event["time"].as_f64().unwrap(),
        at(2026, 2, 1, 20, 5, 30).timestamp() as f64
    );
    assert_eq!(event["host"], "controller-0");
    assert_eq!(event["source"], "hibernator-controller");
    assert_eq!(event["sourcetype"], "hibernator:runner");
    assert_eq!(event["index"], "infra");
    assert_eq!(event["event"], "Scaling EC2 instances to zero");
    assert_eq!(event["fields"]["execution_id"], "exec-1");
    assert_eq!(event["fields"]["plan"], "prod-offhours");
    assert_eq!(event["fields"]["target"], "ec2");
    assert_eq!(event["fields"]["namespace"], "team-a");
    assert_eq!(event["fields"]["level"], "INFO");
    assert_eq!(event["fields"]["instance"], "i-001");
    assert_eq!(events[1]["fields"]["level"], "WARN");
    assert_eq!(events[1]["event"], "Instances stopped");
}

#[tokio::test]
async fn endpoint_is_normalised() {
    for (configured, expected) in [
        (
            "https://splunk:8088",
            "https://splunk:8088/services/collector/event",
        ),
        (
            "https://splunk:8088/",
            "https://splunk:8088/services/collector/event",
        ),
        (
            "https://splunk:8088/services/collector",
            "https://splunk:8088/services/collector/event",
        ),
        (
            "https://splunk:8088/services/collector/event",
            "https://splunk:8088/services/collector/event",
        ),
    ] {
        assert_eq!(
            event_endpoint(&configured.parse().unwrap()).as_str(),
            expected
        );
    }
}

#[tokio::test]
async fn splits_batches_by_size() {
    let receiver = Receiver::start().await;
    let mut opts = options(&receiver.url());
    opts.max_batch_bytes = 2_000;
    let sink = SplunkSink::new(opts).unwrap();
    let records: Vec<_> = (0..20)
        .map(|i| {
            record(
                "exec-1",
                at(2026, 2, 1, 20, 0, i),
                &format!("line {i:03} {}", "x".repeat(100)),
            )
        })
        .collect();
    sink.write_batch(&records).await.unwrap();
    let requests = receiver.requests();
    assert!(
        requests.len() > 1,
        "expected several requests, got {}",
        requests.len()
    );
    let mut messages = Vec::new();
    for request in &requests {
        assert!(request.body.len() <= 2_000);
        for line in request.text().lines() {
            let event: Value = serde_json::from_str(line).unwrap();
            messages.push(event["event"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = records.iter().map(|r| r.message.clone()).collect();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let receiver = Receiver::start().await;
    receiver.script(&[(503, "busy"), (500, "oops")]);
    let sink = SplunkSink::new(options(&receiver.url())).unwrap();
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].body, requests[2].body);
}

#[tokio::test]
async fn transient_failures_give_up_after_max_retries() {
    let receiver = Receiver::start().await;
    receiver.script(&[(503, ""), (503, ""), (503, ""), (503, "")]);
    let sink = SplunkSink::new(options(&receiver.url())).unwrap();
    let error = sink
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, SinkError::Transient { sink: "splunk", .. }),
        "{error:?}"
    );
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_permanent_and_never_show_the_token() {
    let receiver = Receiver::start().await;
    // A receiver that echoes the token must not leak it through our error.
    receiver.script(&[(
        403,
        &format!(r#"{{"text":"Invalid token {TOKEN}","code":4}}"#),
    )]);
    let sink = SplunkSink::new(options(&receiver.url())).unwrap();
    let error = sink
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, SinkError::Permanent { sink: "splunk", .. }),
        "{error:?}"
    );
    assert_eq!(receiver.requests().len(), 1, "4xx must not be retried");
    let shown = format!("{error} {error:?} {sink:?}");
    assert!(shown.contains("403"), "{shown}");
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
}

#[tokio::test]
async fn unreachable_receiver_is_transient() {
    let sink = SplunkSink::new(options(&closed_port_url())).unwrap();
    let error = sink
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "hello")])
        .await
        .unwrap_err();
    assert!(matches!(error, SinkError::Transient { .. }), "{error:?}");
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
    assert!(!error.to_string().contains(TOKEN));
}
