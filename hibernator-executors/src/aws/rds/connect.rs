//! The wake-up connectivity check: does a database endpoint accept a TCP
//! connection? Address resolution is injectable ([`EndpointResolver`]) so
//! tests can map the emulator's unresolvable `*.rds.amazonaws.com` names to
//! local listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

/// Maps an endpoint `(host, port)` to the socket address to connect to;
/// `None` falls back to DNS resolution of the host.
pub type EndpointResolver = Arc<dyn Fn(&str, u16) -> Option<SocketAddr> + Send + Sync>;

/// Upper bound of one connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Tries once to open (and immediately close) a TCP connection to
/// `host:port`, within `limit`. The error says why it failed (no secrets:
/// only the endpoint and the I/O error).
pub async fn probe(
    resolver: Option<&EndpointResolver>,
    host: &str,
    port: u16,
    limit: Duration,
) -> Result<(), String> {
    let address = match resolver.and_then(|r| r(host, port)) {
        Some(address) => address,
        None => resolve(host, port, limit).await?,
    };
    match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "connecting to {host}:{port} ({address}) failed: {e}"
        )),
        Err(_) => Err(format!(
            "connecting to {host}:{port} ({address}) did not succeed within {}",
            hibernator_core::duration::format_duration(limit)
        )),
    }
}

async fn resolve(host: &str, port: u16, limit: Duration) -> Result<SocketAddr, String> {
    let lookup = tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await;
    match lookup {
        Ok(Ok(mut addresses)) => addresses
            .next()
            .ok_or_else(|| format!("{host} resolved to no address")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Err(_) => Err(format!("resolving {host} timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn probe_uses_the_resolver_and_reports_refusals() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let resolver: EndpointResolver =
            Arc::new(move |host, _| (host == "db.example").then_some(open));
        probe(Some(&resolver), "db.example", 5432, DEFAULT_CONNECT_TIMEOUT)
            .await
            .unwrap();

        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let refusing: EndpointResolver = Arc::new(move |_, _| Some(closed));
        let err = probe(Some(&refusing), "db.example", 5432, DEFAULT_CONNECT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(err.contains("db.example:5432"), "{err}");
    }

    #[tokio::test]
    async fn probe_without_resolver_uses_dns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        probe(None, "127.0.0.1", port, DEFAULT_CONNECT_TIMEOUT)
            .await
            .unwrap();
        let err = probe(None, "no-such-host.invalid", port, DEFAULT_CONNECT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(err.contains("no-such-host.invalid"), "{err}");
    }
}
