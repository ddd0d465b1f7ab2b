//! OTLP/gRPC export against a local collector (the OTLP logs service from
//! `opentelemetry-proto`, served by tonic).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hibernator_streaming::sink::{
    LogSink, OtlpConfig, OtlpOptions, OtlpSink, SinkError, SinksConfig, build_sinks_with_env,
};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::sinks::common::{at, closed_port_url, record};

#[derive(Clone, Default)]
struct Collector {
    requests: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn start_collector() -> (String, Collector, tokio::task::JoinHandle<()>) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = LogsServiceServer::new(collector.clone());
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (format!("http://{addr}"), collector, task)
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

#[tokio::test]
async fn exports_log_records_with_execution_attributes() {
    let (endpoint, collector, server) = start_collector().await;
    let sink = OtlpSink::new(OtlpOptions {
        endpoint,
        service_name: "hibernator-operator".to_string(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let mut line = record(
        "exec-123",
        at(2026, 2, 1, 20, 5, 30),
        "Scaling EC2 instances",
    );
    line.level = "WARN".to_string();
    line.fields
        .insert("instance".to_string(), "i-001".to_string());
    sink.write_batch(&[line, record("exec-123", at(2026, 2, 1, 20, 5, 31), "done")])
        .await
        .unwrap();

    let requests = collector.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let resource_logs = &requests[0].resource_logs;
    assert_eq!(resource_logs.len(), 1);
    let resource = attributes(&resource_logs[0].resource.as_ref().unwrap().attributes);
    assert_eq!(resource["service.name"], "hibernator-operator");
    let scope_logs = &resource_logs[0].scope_logs;
    assert_eq!(
        scope_logs[0].scope.as_ref().unwrap().name,
        "hibernator-streaming"
    );
    let records = &scope_logs[0].log_records;
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(text(first.body.as_ref()), "Scaling EC2 instances");
    assert_eq!(first.severity_text, "WARN");
    assert_eq!(first.severity_number, 13);
    assert_eq!(
        first.time_unix_nano,
        at(2026, 2, 1, 20, 5, 30).timestamp_nanos_opt().unwrap() as u64
    );
    let attrs = attributes(&first.attributes);
    assert_eq!(attrs["execution.id"], "exec-123");
    assert_eq!(attrs["k8s.namespace.name"], "team-a");
    assert_eq!(attrs["hibernator.plan"], "prod-offhours");
    assert_eq!(attrs["hibernator.target"], "ec2");
    assert_eq!(attrs["instance"], "i-001");
    assert_eq!(text(records[1].body.as_ref()), "done");
    assert_eq!(records[1].severity_text, "INFO");
    server.abort();
}

#[tokio::test]
async fn built_from_config_and_flushed_through_the_batcher() {
    let (endpoint, collector, server) = start_collector().await;
    let config = SinksConfig {
        otlp: Some(OtlpConfig {
            enabled: true,
            endpoint,
            service_name: None,
            timeout: Some("5s".to_string()),
        }),
        ..SinksConfig::default()
    };
    let sinks = build_sinks_with_env(&config, &|_| None).unwrap();
    assert_eq!(sinks.len(), 1);
    assert_eq!(sinks[0].name(), "otlp");
    sinks[0]
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "queued")])
        .await
        .unwrap();
    sinks[0].flush().await.unwrap();
    let requests = collector.requests.lock().unwrap().clone();
    let records: usize = requests
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    assert_eq!(records, 1);
    server.abort();
}

#[tokio::test]
async fn an_unreachable_collector_is_a_transient_error() {
    let sink = OtlpSink::new(OtlpOptions {
        endpoint: closed_port_url(),
        service_name: "hibernator-operator".to_string(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let error = sink
        .write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "lost")])
        .await
        .unwrap_err();
    assert!(
        matches!(error, SinkError::Transient { sink: "otlp", .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_endpoint_names_the_field() {
    let error = OtlpOptions::from_config(&OtlpConfig {
        enabled: true,
        endpoint: "collector:4317".to_string(),
        service_name: None,
        timeout: None,
    })
    .unwrap_err();
    assert!(error.to_string().starts_with("otlp.endpoint"), "{error}");
}
