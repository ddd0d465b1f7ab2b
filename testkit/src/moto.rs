//! A moto server per test.
//!
//! The server binary is found, in order, at `$HIBERNATOR_MOTO_SERVER`,
//! `<workspace>/.venv/bin/moto_server` (what `scripts/test.sh` installs) or
//! `moto_server` on `PATH`. When `HIBERNATOR_TEST_AWS_ENDPOINT` is set, that
//! endpoint is used instead and no process is started (the caller owns it;
//! [`MotoServer::reset`] still wipes its state).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;
use tokio::process::{Child, Command};

/// Errors starting or talking to moto.
#[derive(Debug, Error)]
pub enum MotoError {
    /// The moto_server binary was not found.
    #[error(
        "moto_server not found (looked at $HIBERNATOR_MOTO_SERVER, {venv} and PATH); install it with `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` or run scripts/test.sh"
    )]
    NotInstalled {
        /// The venv path that was tried.
        venv: String,
    },
    /// The process could not be started.
    #[error("cannot start moto_server: {0}")]
    Spawn(#[source] std::io::Error),
    /// The server did not answer in time.
    #[error("moto_server at {endpoint} did not become ready within {waited:?}")]
    NotReady {
        /// Endpoint polled.
        endpoint: String,
        /// How long we waited.
        waited: Duration,
    },
    /// An HTTP call to the server failed.
    #[error("moto request {what} failed: {message}")]
    Http {
        /// Which call.
        what: &'static str,
        /// Error text.
        message: String,
    },
}

/// A running (or external) moto server.
pub struct MotoServer {
    endpoint: String,
    child: Option<Child>,
}

impl MotoServer {
    /// Starts a fresh server on a free 127.0.0.1 port, or attaches to
    /// `HIBERNATOR_TEST_AWS_ENDPOINT` (and resets it).
    pub async fn start() -> Result<Self, MotoError> {
        if let Ok(endpoint) = std::env::var("HIBERNATOR_TEST_AWS_ENDPOINT") {
            let server = Self {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                child: None,
            };
            server.wait_ready(Duration::from_secs(10)).await?;
            server.reset().await?;
            return Ok(server);
        }
        let binary = find_binary()?;
        let port = free_port().map_err(MotoError::Spawn)?;
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(MotoError::Spawn)?;
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// Base URL, e.g. `http://127.0.0.1:43121`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Wipes every resource in the emulator.
    pub async fn reset(&self) -> Result<(), MotoError> {
        let status = request(&format!("{}/moto-api/reset", self.endpoint), "POST")
            .await
            .map_err(|message| MotoError::Http {
                what: "reset",
                message,
            })?;
        if status >= 300 {
            return Err(MotoError::Http {
                what: "reset",
                message: format!("status {status}"),
            });
        }
        Ok(())
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), MotoError> {
        let url = format!("{}/moto-api/", self.endpoint);
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if request(&url, "GET").await.is_ok_and(|s| s < 500) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(MotoError::NotReady {
                    endpoint: self.endpoint.clone(),
                    waited: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

fn find_binary() -> Result<PathBuf, MotoError> {
    if let Ok(path) = std::env::var("HIBERNATOR_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("moto_server"))
            .find(|p| p.exists())
    }) {
        return Ok(path);
    }
    Err(MotoError::NotInstalled {
        venv: venv.display().to_string(),
    })
}

/// The workspace root (the directory holding `testkit/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(listener.local_addr()?.port())
}

async fn request(url: &str, method: &str) -> Result<u16, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // Drain the body so the connection is reusable.
    let _ = response.into_body().collect().await;
    Ok(status)
}
