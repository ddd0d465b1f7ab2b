//! The `rds` wake-up connectivity check (`connectivityCheck`): off by
//! default, so an available database never fails its wake-up only because
//! the runner cannot reach it; when on, an unreachable endpoint fails within
//! the check's own timeout with a message that says what to do.
//!
//! moto reports endpoints such as `<id>.<hash>.<region>.rds.amazonaws.com`
//! that do not resolve here; a resolver maps them to local sockets where a
//! test needs a reachable (or a refusing) endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// A hang guard, far above what the tests need and far below the 15 minutes
/// an unbounded wait for the endpoint would take (never a timing assertion).
const GUARD: Duration = Duration::from_secs(120);

/// A resolver that records every endpoint asked for and answers `answer`
/// (`None`: the executor falls back to DNS).
fn recording(answer: Option<SocketAddr>) -> (EndpointResolver, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let resolver: EndpointResolver = Arc::new(move |host, port| {
        log.lock()
            .expect("resolver log")
            .push(format!("{host}:{port}"));
        answer
    });
    (resolver, seen)
}

/// A local address nothing listens on.
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
}

/// `host:port` of the instance's endpoint as RDS reports it.
async fn endpoint_of(client: &Client, id: &str) -> String {
    let out = client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .expect("describe_db_instances");
    let endpoint = out.db_instances()[0]
        .endpoint()
        .cloned()
        .expect("moto reports an endpoint");
    format!(
        "{}:{}",
        endpoint.address().unwrap_or_default(),
        endpoint.port().unwrap_or_default()
    )
}

/// One wake-up attempt of cycle `cycle` (no retries), bounded by [`GUARD`].
async fn wakeup_once(
    ex: &Arc<dyn Executor>,
    store: &MemoryRestoreStore,
    params: &Value,
    cycle: &str,
) -> Result<TargetReport, hibernator_core::executor::ExecutorError> {
    tokio::time::timeout(
        GUARD,
        run_wakeup(
            ex.as_ref(),
            &ctx(Operation::Wakeup, cycle),
            params,
            store,
            &RetryPolicy::no_retry(),
        ),
    )
    .await
    .expect("the wake-up ended long before the awaitCompletion timeout")
}

#[tokio::test]
async fn by_default_an_available_database_wakes_up_without_a_network_path() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    // The default awaitCompletion (on, 15m) and no connectivityCheck: the
    // shape of most plans. Nothing may try to connect to the database.
    let params = json!({"selector": {"instanceIds": ["orders-db"]}});
    let (resolver, seen) = recording(None);
    let ex = typed(executor(&client).with_endpoint_resolver(resolver));
    let store = MemoryRestoreStore::new();
    shutdown(&ex, &store, &params, "c1").await;
    assert_eq!(instance_status(&client, "orders-db").await, "stopped");

    let report = wakeup_once(&ex, &store, &params, "c1")
        .await
        .expect("wake-up of an available database");
    assert_eq!(report.resources, ["instance/orders-db"]);
    assert_eq!(instance_status(&client, "orders-db").await, "available");
    assert!(record(&store).await.is_empty());
    assert!(
        seen.lock().expect("resolver log").is_empty(),
        "no connection attempt without connectivityCheck: {seen:?}"
    );

    // Same with the check explicitly off, and a timeout that is ignored.
    let params = json!({
        "selector": {"instanceIds": ["orders-db"]},
        "connectivityCheck": {"enabled": false},
    });
    shutdown(&ex, &store, &params, "c2").await;
    wakeup_once(&ex, &store, &params, "c2")
        .await
        .expect("wake-up with the check off");
    assert!(seen.lock().expect("resolver log").is_empty(), "{seen:?}");
}

#[tokio::test]
async fn with_the_check_an_unreachable_endpoint_fails_clearly_within_its_timeout() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    let endpoint = endpoint_of(&client, "orders-db").await;
    // awaitCompletion allows 10 minutes; the check's 1s bounds the failure.
    let params = json!({
        "selector": {"instanceIds": ["orders-db"]},
        "awaitCompletion": {"timeout": "10m"},
        "connectivityCheck": {"enabled": true, "timeout": "1s"},
    });
    let (resolver, seen) = recording(Some(closed_port().await));
    let ex = typed(executor(&client).with_endpoint_resolver(resolver));
    let store = MemoryRestoreStore::new();
    shutdown(&ex, &store, &params, "c1").await;

    let err = wakeup_once(&ex, &store, &params, "c1")
        .await
        .expect_err("the endpoint refuses connections");
    assert_eq!(err.category, category::PARTIAL_RESTORE);
    assert_eq!(err.resource.as_deref(), Some("instance/orders-db"));
    for needle in [
        "instance/orders-db is available".to_string(),
        format!("its endpoint {endpoint} within 1s"),
        "connectivityCheck.enabled: false".to_string(),
    ] {
        assert!(err.message.contains(&needle), "{needle:?} not in: {err}");
    }
    assert!(seen.lock().expect("resolver log").contains(&endpoint));
    // The database was started; its entry stays for the next attempt.
    assert_eq!(instance_status(&client, "orders-db").await, "available");
    assert_eq!(keys(&record(&store).await), ["instance/orders-db"]);

    // moto's own endpoint name, resolved for real (it does not resolve, or
    // nothing answers): the same failure, naming it, within the same bound.
    let ex = typed(executor(&client));
    let err = wakeup_once(&ex, &store, &params, "c1")
        .await
        .expect_err("moto's endpoint is not reachable");
    assert!(
        err.message
            .contains(&format!("its endpoint {endpoint} within 1s")),
        "{err}"
    );
    assert_eq!(keys(&record(&store).await), ["instance/orders-db"]);
}

#[tokio::test]
async fn with_the_check_a_reachable_endpoint_passes() {
    let server = moto().await;
    let client = Client::new(&sdk_config(server.endpoint()).await);
    create_instance(&client, "orders-db", &[]).await;
    let endpoint = endpoint_of(&client, "orders-db").await;
    let params = json!({
        "selector": {"instanceIds": ["orders-db"]},
        "awaitCompletion": {"timeout": "1m"},
        "connectivityCheck": {"enabled": true},
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (resolver, seen) = recording(Some(listener.local_addr().expect("address")));
    let ex = typed(executor(&client).with_endpoint_resolver(resolver));
    let store = MemoryRestoreStore::new();
    shutdown(&ex, &store, &params, "c1").await;

    let report = wakeup_once(&ex, &store, &params, "c1")
        .await
        .expect("the endpoint accepts connections");
    assert_eq!(report.resources, ["instance/orders-db"]);
    assert!(record(&store).await.is_empty());
    assert_eq!(
        *seen.lock().expect("resolver log"),
        [endpoint],
        "the endpoint RDS reports is the one checked"
    );
}
