//! `kubectl port-forward` access (`grpc.localAccess`, on by default): progress
//! queries from the pod's loopback need no token, and with TLS on may be
//! plaintext, as the streaming journey's `grpcurl -plaintext localhost:50051`
//! does. Everything else stays authenticated: runners' reports from
//! anywhere, and queries from every other address. Real gRPC clients over
//! real sockets, plus the service called with chosen peer addresses.

use std::net::{IpAddr, SocketAddr};

use futures::StreamExt;
use hibernator_streaming::client::StreamClient;
use hibernator_streaming::config::Transport;
use hibernator_streaming::server::GrpcService;
use hibernator_streaming::wire::proto::execution_service_client::ExecutionServiceClient;
use hibernator_streaming::wire::proto::execution_service_server::ExecutionService;
use hibernator_streaming::wire::proto::{GetProgressRequest, HeartbeatRequest, ProgressUpdate};
use tonic::transport::server::TcpConnectInfo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::support::{EXEC, Harness, Peers, loopback};
use crate::tls::Pki;

fn query() -> GetProgressRequest {
    GetProgressRequest {
        execution_id: EXEC.into(),
    }
}

/// This machine's address on its default route, when it has one (no
/// packet is sent: a UDP "connect" only picks the source address).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.254:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn report_progress(h: &Harness, client: &StreamClient) {
    client
        .progress("Shutdown", 60, "Scaling EC2 instances")
        .await
        .unwrap();
    h.eventually("the progress is known", || {
        h.server.ingest().hub().get(EXEC).is_some()
    })
    .await;
}

#[tokio::test]
async fn port_forward_progress_queries_need_no_token() {
    let h = Harness::start().await;
    let runner = h.client(Transport::Grpc).await;
    report_progress(&h, &runner).await;
    let channel = Channel::from_shared(format!("http://{}", h.grpc_endpoint()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = ExecutionServiceClient::new(channel.clone());

    // Journey step 5: `grpcurl -plaintext -d '{"executionId": …}' localhost:50051 …/GetProgress`.
    let answer = grpc.get_progress(query()).await.unwrap().into_inner();
    assert_eq!(
        (
            answer.execution_id.as_str(),
            answer.phase.as_str(),
            answer.progress,
            answer.message.as_str()
        ),
        (EXEC, "Shutdown", 60, "Scaling EC2 instances")
    );
    let mut watch = grpc.watch_progress(query()).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().progress, 60);
    // Journey step 8: `grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check`.
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    // Reports stay authenticated, from loopback too.
    let report = grpc
        .report_progress(ProgressUpdate {
            execution_id: EXEC.into(),
            phase: "Shutdown".into(),
            progress: 99,
            message: "forged".into(),
            timestamp: None,
        })
        .await
        .unwrap_err();
    assert_eq!(report.code(), tonic::Code::Unauthenticated);
    let beat = grpc
        .heartbeat(HeartbeatRequest {
            execution_id: EXEC.into(),
            ..HeartbeatRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(beat.code(), tonic::Code::Unauthenticated);
    // A token that is presented is checked.
    let mut bad = tonic::Request::new(query());
    bad.metadata_mut()
        .insert("authorization", "Bearer not-a-token".parse().unwrap());
    assert_eq!(
        grpc.get_progress(bad).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let text = h.metrics_text();
    let sent: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("hibernator_streaming_bytes_sent_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(sent > 0.0, "answers are counted as bytes sent: {text}");
    drop(watch);
    runner.complete(true, None).await.unwrap();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_on_another_address_still_needs_a_token() {
    let Some(ip) = non_loopback_ip() else {
        // The peer-address decision itself is covered below without a
        // network (the_peer_address_decides).
        eprintln!("no non-loopback address on this machine: real-socket part skipped");
        return;
    };
    let mut config = loopback();
    config.grpc.host = "0.0.0.0".into();
    let h = Harness::start_with(config).await;
    let runner = h.client(Transport::Grpc).await;
    report_progress(&h, &runner).await;
    let port = h.server.grpc_addr().unwrap().port();
    let remote = SocketAddr::new(ip, port);
    let mut grpc = ExecutionServiceClient::connect(format!("http://{remote}"))
        .await
        .unwrap();
    let refused = grpc.get_progress(query()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(
        refused.message().contains("kubectl create token")
            && refused.message().contains("kubectl port-forward"),
        "the refusal names both ways in: {refused:?}"
    );
    assert_eq!(
        grpc.watch_progress(query()).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // With a token it is answered from there too.
    let mut with_token = tonic::Request::new(query());
    with_token.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", h.token).parse().unwrap(),
    );
    assert_eq!(
        grpc.get_progress(with_token)
            .await
            .unwrap()
            .into_inner()
            .progress,
        60
    );
    runner.complete(true, None).await.unwrap();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_peer_address_decides() {
    let peers = Peers::new(Default::default());
    let service =
        GrpcService::new(peers.auth.clone(), peers.ingest.clone()).with_local_access(true);
    let from = |peer: &str| {
        let mut request = tonic::Request::new(query());
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(peer.parse().unwrap()),
        });
        request
    };
    // No progress yet: a local query gets past authentication (NOT_FOUND).
    for local in ["127.0.0.1:40000", "[::1]:40000", "[::ffff:127.0.0.1]:40000"] {
        let status = service.get_progress(from(local)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{local}: {status:?}");
    }
    // Pod IPs, and 127.0.0.6 (a sidecar relaying a remote peer), need a token.
    for remote in ["10.0.0.7:40000", "[fd00::7]:40000", "127.0.0.6:40000"] {
        let status = service.get_progress(from(remote)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{remote}");
        let status = service.watch_progress(from(remote)).await.err().unwrap();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{remote}");
    }
    // Switched off, loopback needs a token too.
    let strict = GrpcService::new(peers.auth.clone(), peers.ingest.clone());
    let status = strict
        .get_progress(from("127.0.0.1:40000"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(!status.message().contains("port-forward"), "{status:?}");
}

fn tls_runner(h: &Harness, pki: &Pki) -> hibernator_streaming::config::ClientConfig {
    let mut c = h.client_config(Transport::Grpc);
    c.grpc_tls = true;
    c.grpc_ca_path = Some(pki.path("ca.crt"));
    c
}

#[tokio::test]
async fn with_tls_a_port_forward_may_speak_plaintext() {
    let pki = Pki::new();
    let mut config = loopback();
    config.grpc.tls = pki.server_tls(false);
    let h = Harness::start_with(config).await;
    let runner = StreamClient::connect(tls_runner(&h, &pki)).await.unwrap();
    report_progress(&h, &runner).await;

    // `grpcurl -plaintext localhost:50051 …` through a port-forward.
    let mut plain = ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint()))
        .await
        .unwrap();
    assert_eq!(
        plain
            .get_progress(query())
            .await
            .unwrap()
            .into_inner()
            .progress,
        60
    );
    // `grpcurl -cacert ca.crt localhost:50051 …`: TLS from loopback works as well.
    let ca = std::fs::read(pki.path("ca.crt")).unwrap();
    let tls = Channel::from_shared(format!(
        "https://localhost:{}",
        h.server.grpc_addr().unwrap().port()
    ))
    .unwrap()
    .tls_config(
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost"),
    )
    .unwrap()
    .connect()
    .await
    .unwrap();
    let mut over_tls = ExecutionServiceClient::new(tls);
    assert_eq!(
        over_tls
            .get_progress(query())
            .await
            .unwrap()
            .into_inner()
            .progress,
        60
    );
    runner.complete(true, None).await.unwrap();
    h.server.shutdown().await.unwrap();

    // From another address, plaintext to the TLS port is not served.
    if let Some(ip) = non_loopback_ip() {
        let mut config = loopback();
        config.grpc.host = "0.0.0.0".into();
        config.grpc.tls = pki.server_tls(false);
        let h = Harness::start_with(config).await;
        let port = h.server.grpc_addr().unwrap().port();
        let refused = match ExecutionServiceClient::connect(format!("http://{ip}:{port}")).await {
            Err(_) => true,
            Ok(mut c) => c.get_progress(query()).await.is_err(),
        };
        assert!(refused, "plaintext from {ip} must not be served");
        h.server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn required_client_certificates_are_not_bypassed_by_plaintext() {
    let pki = Pki::new();
    let mut config = loopback();
    config.grpc.tls = pki.server_tls(true);
    let h = Harness::start_with(config).await;
    let refused =
        match ExecutionServiceClient::connect(format!("http://{}", h.grpc_endpoint())).await {
            Err(_) => true,
            Ok(mut c) => c.get_progress(query()).await.is_err(),
        };
    assert!(refused, "with clientCaPath every connection is mutual TLS");
    h.server.shutdown().await.unwrap();
}
