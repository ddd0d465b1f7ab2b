//! gRPC over TLS with rcgen-generated certificates, with and without client
//! certificate verification; runners configured only by the environment the
//! controller gives runner Jobs (the CA inline as `HIBERNATOR_GRPC_TLS_CA_PEM`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hibernator_streaming::client::{ActiveTransport, Level, StreamClient};
use hibernator_streaming::config::{
    ClientConfig, ENV_EXECUTION_ID, ENV_GRPC_TLS_CA, ENV_GRPC_TLS_CA_PEM, ENV_TOKEN_PATH,
    ServerConfig, ServerTls, Transport,
};
use hibernator_streaming::status::StatusChange;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use crate::support::{Harness, loopback};

pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost and a client certificate.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        write("ca.crt", ca_cert.pem());

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        write("tls.crt", server.pem());
        write("tls.key", server_key.serialize_pem());

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["runner".to_string()]).unwrap();
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        write("client.crt", client.pem());
        write("client.key", client_key.serialize_pem());
        Self { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn server_tls(&self, verify_clients: bool) -> ServerTls {
        ServerTls {
            enabled: true,
            cert_path: self.path("tls.crt"),
            key_path: self.path("tls.key"),
            client_ca_path: verify_clients.then(|| self.path("ca.crt")),
            // The runner CA defaults to ca.crt next to tls.crt.
            ca_path: None,
        }
    }
}

async fn tls_harness(pki: &Pki, verify_clients: bool) -> Harness {
    let mut config = loopback();
    config.grpc.tls = pki.server_tls(verify_clients);
    // This file is about TLS; local (port-forward) access is local_access.rs's.
    config.grpc.local_access = false;
    Harness::start_with(config).await
}

fn tls_client_config(h: &Harness, ca: &Path) -> hibernator_streaming::config::ClientConfig {
    let mut c = h.client_config(Transport::Grpc);
    c.grpc_tls = true;
    c.grpc_ca_path = Some(ca.to_path_buf());
    c.max_retries = 0;
    c
}

#[tokio::test]
async fn grpc_over_tls_round_trip() {
    let pki = Pki::new();
    let h = tls_harness(&pki, false).await;
    let client = StreamClient::connect(tls_client_config(&h, &pki.path("ca.crt")))
        .await
        .unwrap();
    assert_eq!(client.transport(), ActiveTransport::Grpc);
    client.try_log(Level::Info, "over TLS", BTreeMap::new());
    client.progress("Shutdown", 50, "half").await.unwrap();
    client.complete(true, None).await.unwrap();
    assert_eq!(h.sink.records.lock().unwrap()[0].message, "over TLS");

    // A plaintext client cannot talk to the TLS listener.
    let mut plain = h.client_config(Transport::Grpc);
    plain.max_retries = 0;
    let refused = match StreamClient::connect(plain).await {
        Err(_) => true,
        Ok(c) => c.heartbeat().await.is_err(),
    };
    assert!(refused);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_certificates_are_verified_when_configured() {
    let pki = Pki::new();
    let h = tls_harness(&pki, true).await;

    let anonymous = tls_client_config(&h, &pki.path("ca.crt"));
    let refused = match StreamClient::connect(anonymous).await {
        Err(_) => true,
        Ok(c) => c.heartbeat().await.is_err(),
    };
    assert!(refused, "a client without a certificate is refused");

    let mut with_cert = tls_client_config(&h, &pki.path("ca.crt"));
    with_cert.grpc_client_identity = Some((pki.path("client.crt"), pki.path("client.key")));
    let client = StreamClient::connect(with_cert).await.unwrap();
    client.heartbeat().await.unwrap();
    client.complete(true, None).await.unwrap();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_tls_files_fail_start_with_the_field_name() {
    let mut config = loopback();
    config.grpc.tls = ServerTls {
        enabled: true,
        cert_path: "/nonexistent/tls.crt".into(),
        key_path: "/nonexistent/tls.key".into(),
        client_ca_path: None,
        ca_path: None,
    };
    let auth = std::sync::Arc::new(hibernator_streaming::auth::Authenticator::new(
        std::sync::Arc::new(crate::support::FakeReviewer::default()),
        std::sync::Arc::new(crate::support::FakeDirectory::default()),
        Default::default(),
    ));
    let ingest = std::sync::Arc::new(hibernator_streaming::ingest::Ingest::new(
        std::sync::Arc::new(crate::support::RecordingStatus::default()),
        Vec::new(),
        Default::default(),
    ));
    let err = hibernator_streaming::server::StreamingServer::new(config, auth, ingest)
        .start()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("certPath"), "{err}");
}

/// The runner Job environment the controller derives from `server` (whose
/// listener now runs at `h`), plus the per-Job execution id and token path.
fn runner_job_env(h: &Harness, server: &ServerConfig) -> BTreeMap<String, String> {
    let mut server = server.clone();
    server.grpc.endpoint = Some(format!("https://{}", h.grpc_endpoint()));
    server.webhook.endpoint = Some(h.webhook_endpoint());
    let mut env: BTreeMap<String, String> = server
        .runner_env()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.insert(ENV_EXECUTION_ID.into(), crate::support::EXEC.into());
    env.insert(ENV_TOKEN_PATH.into(), h.token_path().display().to_string());
    env
}

#[tokio::test]
async fn a_runner_configured_only_by_its_job_env_streams_over_tls() {
    let pki = Pki::new();
    let mut server = loopback();
    server.transport = Transport::Grpc;
    server.grpc.tls = pki.server_tls(false);
    let h = Harness::start_with(server.clone()).await;

    let env = runner_job_env(&h, &server);
    assert!(!env.contains_key(ENV_GRPC_TLS_CA), "no CA file in the Job");
    assert_eq!(
        env.get(ENV_GRPC_TLS_CA_PEM),
        Some(&std::fs::read_to_string(pki.path("ca.crt")).unwrap())
    );
    let config = ClientConfig::from_env(|k| env.get(k).cloned()).unwrap();
    assert_eq!(config.transport, Transport::Grpc);
    assert!(config.grpc_tls);
    assert_eq!(config.grpc_ca_path, None);

    let client = StreamClient::connect(config).await.unwrap();
    assert_eq!(client.transport(), ActiveTransport::Grpc);
    for i in 0..3 {
        assert!(client.try_log(Level::Info, format!("line {i} over TLS"), BTreeMap::new()));
    }
    client
        .progress("Shutdown", 40, "Stopping instances")
        .await
        .unwrap();
    client.complete(true, None).await.unwrap();
    let messages: Vec<String> = h
        .sink
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.message.clone())
        .collect();
    assert_eq!(
        messages,
        ["line 0 over TLS", "line 1 over TLS", "line 2 over TLS"]
    );
    let changes = h.status.changes.lock().unwrap().clone();
    assert!(
        changes.iter().any(|(_, c)| matches!(
            c,
            StatusChange::Progress(p) if p.progress == 40 && p.message == "Stopping instances"
        )),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|(_, c)| matches!(c, StatusChange::Completed(done) if done.success)),
        "{changes:?}"
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn auto_with_a_wrong_ca_falls_back_to_the_webhook() {
    let pki = Pki::new();
    let other = Pki::new();
    let mut server = loopback();
    server.grpc.tls = pki.server_tls(false);
    let h = Harness::start_with(server.clone()).await;

    let mut env = runner_job_env(&h, &server);
    assert_eq!(
        env.get("HIBERNATOR_STREAM_TRANSPORT").map(String::as_str),
        Some("auto")
    );
    // A CA that did not sign the server certificate.
    env.insert(
        ENV_GRPC_TLS_CA_PEM.into(),
        std::fs::read_to_string(other.path("ca.crt")).unwrap(),
    );
    let config = ClientConfig::from_env(|k| env.get(k).cloned()).unwrap();
    let client = StreamClient::connect(config).await.unwrap();
    assert_eq!(client.transport(), ActiveTransport::Webhook);
    client.try_log(Level::Info, "via the webhook", BTreeMap::new());
    client.progress("Shutdown", 10, "starting").await.unwrap();
    client.complete(true, None).await.unwrap();
    assert_eq!(h.sink.records.lock().unwrap()[0].message, "via the webhook");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_tls_without_any_ca_names_both_variables() {
    let pki = Pki::new();
    let h = tls_harness(&pki, false).await;
    let mut config = h.client_config(Transport::Grpc);
    config.grpc_tls = true;
    config.max_retries = 0;
    let error = StreamClient::connect(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains(ENV_GRPC_TLS_CA), "{error}");
    assert!(error.contains(ENV_GRPC_TLS_CA_PEM), "{error}");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_ca_file_wins_over_the_inline_pem() {
    let pki = Pki::new();
    let other = Pki::new();
    let h = tls_harness(&pki, false).await;
    // Right file, wrong inline PEM: the file is used, so it connects.
    let mut config = tls_client_config(&h, &pki.path("ca.crt"));
    config.grpc_ca_pem = Some(std::fs::read_to_string(other.path("ca.crt")).unwrap());
    let client = StreamClient::connect(config).await.unwrap();
    client.heartbeat().await.unwrap();
    client.complete(true, None).await.unwrap();
    // Wrong file, right inline PEM: the file is used, so it fails.
    let mut config = tls_client_config(&h, &other.path("ca.crt"));
    config.grpc_ca_pem = Some(std::fs::read_to_string(pki.path("ca.crt")).unwrap());
    let refused = match StreamClient::connect(config).await {
        Err(_) => true,
        Ok(c) => c.heartbeat().await.is_err(),
    };
    assert!(refused);
    h.server.shutdown().await.unwrap();
}
