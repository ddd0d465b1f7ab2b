//! Tests of the server and client configuration.

use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn server_env_overrides_bind_address_and_tls() {
    let cfg = ServerConfig::default()
        .with_env(env(&[
            (ENV_GRPC_ENDPOINT, "localhost:50052"),
            (ENV_GRPC_TLS, "true"),
        ]))
        .unwrap();
    assert_eq!(cfg.grpc.host, "localhost");
    assert_eq!(cfg.grpc.port, 50052);
    assert!(cfg.grpc.tls.enabled);
    assert!(
        ServerConfig::default()
            .with_env(env(&[(ENV_GRPC_ENDPOINT, "nope")]))
            .is_err()
    );
}

#[test]
fn client_env_reads_the_journey_variables() {
    let cfg = ClientConfig::from_env(env(&[
        (ENV_EXECUTION_ID, "exec-123"),
        (
            ENV_GRPC_ENDPOINT,
            "hibernator-grpc-service.hibernator-system:50051",
        ),
        (ENV_WEBHOOK_ENDPOINT, "http://hibernator-webhook:8080/logs"),
        (ENV_TIMEOUT, "10s"),
        (ENV_MAX_RETRIES, "5"),
    ]))
    .unwrap();
    assert_eq!(cfg.execution_id, "exec-123");
    assert_eq!(cfg.transport, Transport::Auto);
    assert_eq!(cfg.timeout, Duration::from_secs(10));
    assert_eq!(cfg.max_retries, 5);
    assert!(matches!(
        ClientConfig::from_env(env(&[(ENV_GRPC_ENDPOINT, "x:1")])),
        Err(ConfigError::Missing {
            field: ENV_EXECUTION_ID
        })
    ));
    assert!(matches!(
        ClientConfig::from_env(env(&[(ENV_EXECUTION_ID, "e"), (ENV_TRANSPORT, "webhook")])),
        Err(ConfigError::Missing {
            field: ENV_WEBHOOK_ENDPOINT
        })
    ));
}

#[test]
fn runner_env_round_trips_into_the_client_config() {
    let mut cfg = ServerConfig::default();
    cfg.grpc.endpoint = Some("hibernator-grpc-service.hibernator-system:50051".into());
    cfg.webhook.endpoint = Some("http://hibernator-webhook:8080/logs".into());
    cfg.webhook.timeout = "10s".into();
    let mut env: HashMap<String, String> = cfg
        .runner_env()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.insert(ENV_EXECUTION_ID.into(), "exec-1".into());
    let client = ClientConfig::from_env(|k| env.get(k).cloned()).unwrap();
    assert_eq!(client.transport, Transport::Auto);
    assert_eq!(client.grpc_endpoint, cfg.grpc.endpoint);
    assert_eq!(client.webhook_endpoint, cfg.webhook.endpoint);
    assert_eq!(client.timeout, Duration::from_secs(10));
    cfg.grpc.endpoint = None;
    assert!(matches!(
        cfg.runner_env(),
        Err(ConfigError::Missing {
            field: "grpc.endpoint"
        })
    ));
    cfg.transport = Transport::Webhook;
    assert!(cfg.runner_env().is_ok());
}

#[test]
fn helm_values_deserialize() {
    let cfg: ServerConfig = serde_json::from_value(serde_json::json!({
        "enabled": true, "transport": "grpc",
        "grpc": {"host": "0.0.0.0", "port": 50051,
                 "tls": {"enabled": true, "certPath": "/c", "keyPath": "/k"}},
        "webhook": {"port": 9000, "endpoint": "http://hibernator-webhook:8080/logs",
                    "maxRetries": 3, "timeout": "30s"}
    }))
    .unwrap();
    assert_eq!(cfg.webhook.port, 9000);
    assert!(cfg.webhook.enabled);
    assert_eq!(cfg.grpc.tls.cert_path, PathBuf::from("/c"));
}

fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn tls_server(dir: &std::path::Path) -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.grpc.endpoint = Some("https://hibernator-controller.hibernator-system.svc:50051".into());
    cfg.webhook.endpoint =
        Some("http://hibernator-controller.hibernator-system.svc:8082/logs".into());
    cfg.grpc.tls = ServerTls {
        enabled: true,
        cert_path: dir.join("tls.crt"),
        key_path: dir.join("tls.key"),
        client_ca_path: None,
        ca_path: None,
    };
    cfg
}

fn env_map(cfg: &ServerConfig) -> HashMap<String, String> {
    cfg.runner_env()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[test]
fn runner_ca_defaults_to_ca_crt_next_to_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pem = ca_pem();
    std::fs::write(dir.path().join("ca.crt"), &pem).unwrap();
    let cfg = tls_server(dir.path());
    assert_eq!(cfg.runner_ca_path(), Some(dir.path().join("ca.crt")));
    let env = env_map(&cfg);
    assert_eq!(env.get(ENV_GRPC_TLS).map(String::as_str), Some("true"));
    assert_eq!(env.get(ENV_GRPC_TLS_CA_PEM), Some(&pem));
}

#[test]
fn an_explicit_runner_ca_path_wins() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("bundle.pem");
    let pem = ca_pem();
    std::fs::write(&other, &pem).unwrap();
    let mut cfg = tls_server(dir.path());
    cfg.grpc.tls.ca_path = Some(other.clone());
    assert_eq!(cfg.runner_ca_path(), Some(other));
    assert_eq!(env_map(&cfg).get(ENV_GRPC_TLS_CA_PEM), Some(&pem));
}

#[test]
fn no_runner_ca_without_grpc_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tls_server(dir.path());
    cfg.transport = Transport::Webhook;
    assert_eq!(cfg.runner_ca_path(), None);
    assert!(!env_map(&cfg).contains_key(ENV_GRPC_TLS_CA_PEM));
    cfg.transport = Transport::Auto;
    cfg.grpc.tls.enabled = false;
    assert_eq!(cfg.runner_ca_path(), None);
    assert!(!env_map(&cfg).contains_key(ENV_GRPC_TLS_CA_PEM));
}

#[test]
fn tls_without_a_readable_runner_ca_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tls_server(dir.path());
    let error = cfg.runner_env().unwrap_err().to_string();
    assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
    assert!(
        error.contains(&dir.path().join("ca.crt").display().to_string()),
        "{error}"
    );
    std::fs::write(dir.path().join("ca.crt"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let error = cfg.runner_env().unwrap_err().to_string();
    assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
}

#[test]
fn client_reads_the_inline_ca_and_the_file_wins() {
    let pem = ca_pem();
    let base = [
        (ENV_EXECUTION_ID, "exec-1"),
        (ENV_GRPC_ENDPOINT, "https://controller:50051"),
        (ENV_GRPC_TLS, "true"),
    ];
    let mut with_pem = base.to_vec();
    with_pem.push((ENV_GRPC_TLS_CA_PEM, pem.as_str()));
    let cfg = ClientConfig::from_env(env(&with_pem)).unwrap();
    assert_eq!(cfg.grpc_ca_pem.as_deref(), Some(pem.as_str()));
    assert_eq!(cfg.grpc_ca_path, None);

    let mut both = with_pem.clone();
    both.push((ENV_GRPC_TLS_CA, "/etc/ca/ca.crt"));
    let cfg = ClientConfig::from_env(env(&both)).unwrap();
    assert_eq!(cfg.grpc_ca_path, Some(PathBuf::from("/etc/ca/ca.crt")));
    assert!(
        cfg.grpc_ca_pem.is_some(),
        "kept, but the file wins at connect"
    );

    let mut bad = base.to_vec();
    bad.push((ENV_GRPC_TLS_CA_PEM, "not a certificate"));
    let error = ClientConfig::from_env(env(&bad)).unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                field: ENV_GRPC_TLS_CA_PEM,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn runner_env_with_tls_round_trips_the_ca_into_the_client_config() {
    let dir = tempfile::tempdir().unwrap();
    let pem = ca_pem();
    std::fs::write(dir.path().join("ca.crt"), &pem).unwrap();
    let mut env = env_map(&tls_server(dir.path()));
    env.insert(ENV_EXECUTION_ID.into(), "exec-1".into());
    let client = ClientConfig::from_env(|k| env.get(k).cloned()).unwrap();
    assert!(client.grpc_tls);
    assert_eq!(client.grpc_ca_pem, Some(pem));
}

#[test]
fn helm_values_deserialize_the_runner_ca_path() {
    let cfg: ServerConfig = serde_json::from_value(serde_json::json!({
        "grpc": {"tls": {"enabled": true, "certPath": "/c/tls.crt", "keyPath": "/c/tls.key",
                         "caPath": "/ca/bundle.pem"}}
    }))
    .unwrap();
    assert_eq!(cfg.grpc.tls.ca_path, Some(PathBuf::from("/ca/bundle.pem")));
}

#[test]
fn client_certificates_required_with_runner_transport_grpc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_pem()).unwrap();
    let mut cfg = tls_server(dir.path());
    cfg.grpc.tls.client_ca_path = Some(dir.path().join("clients.crt"));
    cfg.transport = Transport::Grpc;
    let error = cfg.runner_env().unwrap_err().to_string();
    assert!(error.contains("grpc.tls.clientCaPath"), "{error}");
    cfg.transport = Transport::Auto;
    assert!(cfg.runner_env().is_ok(), "auto falls back to the webhook");
}
