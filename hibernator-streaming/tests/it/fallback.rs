//! Transport `auto` really falls back to the webhook; the log queue never
//! blocks and counts what it drops.

use std::collections::BTreeMap;
use std::time::Duration;

use hibernator_streaming::client::{ActiveTransport, Level, StreamClient};
use hibernator_streaming::config::Transport;
use hibernator_streaming::status::StatusChange;

use crate::support::{Harness, loopback};

/// A port with nothing listening.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

#[tokio::test]
async fn auto_falls_back_when_grpc_cannot_connect() {
    let h = Harness::start().await;
    let mut config = h.client_config(Transport::Auto);
    config.grpc_endpoint = Some(closed_port().await);
    let client = StreamClient::connect(config).await.unwrap();
    assert_eq!(client.transport(), ActiveTransport::Webhook);
    assert!(client.try_log(
        Level::Info,
        "Connecting to streaming endpoint",
        BTreeMap::new()
    ));
    client
        .progress("Shutdown", 30, "Stopping instances")
        .await
        .unwrap();
    client.complete(true, None).await.unwrap();
    assert_eq!(h.sink.records.lock().unwrap().len(), 1);
    assert_eq!(h.status.changes.lock().unwrap().len(), 2);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_only_fails_on_a_closed_port() {
    let h = Harness::start().await;
    let mut config = h.client_config(Transport::Grpc);
    config.grpc_endpoint = Some(closed_port().await);
    config.max_retries = 1;
    config.timeout = Duration::from_secs(2);
    assert!(StreamClient::connect(config).await.is_err());
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn auto_falls_back_when_grpc_breaks_mid_stream() {
    // gRPC on one server, the webhook on another, both trusting the same runner.
    let mut grpc_only = loopback();
    grpc_only.webhook.enabled = false;
    let grpc = Harness::start_with(grpc_only).await;
    let mut webhook_only = loopback();
    webhook_only.grpc.enabled = false;
    let webhook = Harness::start_with(webhook_only).await;
    std::fs::write(webhook.token_path(), &grpc.token).unwrap();
    webhook.reviewer.add(
        &grpc.token,
        crate::support::NS,
        crate::support::SA,
        Some((crate::support::POD, crate::support::POD_UID)),
        "hibernator-control-plane",
    );

    let mut config = grpc.client_config(Transport::Auto);
    config.webhook_endpoint = Some(webhook.webhook_endpoint());
    let client = StreamClient::connect(config).await.unwrap();
    assert_eq!(client.transport(), ActiveTransport::Grpc);
    client.try_log(Level::Info, "before", BTreeMap::new());
    client.flush().await.unwrap();
    grpc.eventually("the first line in the gRPC server's sink", || {
        grpc.sink.records.lock().unwrap().len() == 1
    })
    .await;

    grpc.server.shutdown().await.unwrap();
    client.try_log(Level::Info, "after", BTreeMap::new());
    client
        .progress("Shutdown", 80, "still going")
        .await
        .unwrap();
    assert_eq!(client.transport(), ActiveTransport::Webhook);
    client.complete(true, None).await.unwrap();

    let moved = webhook.sink.records.lock().unwrap().clone();
    assert_eq!(
        moved.iter().map(|r| r.message.as_str()).collect::<Vec<_>>(),
        vec!["after"]
    );
    assert_eq!(webhook.status.changes.lock().unwrap().len(), 2);
    webhook.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_without_blocking_and_reports_drops() {
    let h = Harness::start().await;
    let mut config = h.client_config(Transport::Grpc);
    config.queue_size = 8;
    let client = StreamClient::connect(config).await.unwrap();
    // Without yielding, the sender task cannot drain: exactly 8 lines fit.
    let accepted = (0..1000)
        .filter(|i| client.try_log(Level::Info, format!("line {i}"), BTreeMap::new()))
        .count();
    assert_eq!(accepted, 8);
    assert_eq!(client.dropped(), 992);
    client
        .complete(false, Some("EC2 throttled".into()))
        .await
        .unwrap();

    let records = h.sink.records.lock().unwrap().clone();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.message.starts_with("line "))
            .count(),
        8
    );
    let notice = records.iter().find(|r| r.level == "WARN").unwrap();
    assert!(
        notice.message.contains("992 log lines dropped"),
        "{}",
        notice.message
    );
    let changes = h.status.changes.lock().unwrap().clone();
    let StatusChange::Completed(c) = &changes.last().unwrap().1 else {
        panic!("{changes:?}")
    };
    assert_eq!(
        (c.success, c.dropped_logs, c.error.as_deref()),
        (false, 992, Some("EC2 throttled"))
    );
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn try_log_never_waits_for_a_stuck_server() {
    // A webhook peer that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t.t.t").unwrap();
    let mut config = hibernator_streaming::config::ClientConfig::new("exec-1");
    config.transport = Transport::Webhook;
    config.webhook_endpoint = Some(format!("http://{addr}/logs"));
    config.token_path = dir.path().join("token");
    config.queue_size = 4;
    config.batch_size = 1;
    config.timeout = Duration::from_secs(30);
    let client = StreamClient::connect(config).await.unwrap();
    let mut accepted = 0;
    for round in 0..50 {
        if client.try_log(Level::Info, format!("line {round}"), BTreeMap::new()) {
            accepted += 1;
        }
        tokio::task::yield_now().await;
    }
    // One line in flight, four queued: everything else was dropped at once.
    assert!(accepted <= 5, "{accepted}");
    assert_eq!(client.dropped(), 50 - accepted);
}
