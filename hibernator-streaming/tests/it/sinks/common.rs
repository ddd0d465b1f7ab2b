//! Shared helpers: records and a capturing HTTP receiver.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::{DateTime, TimeZone, Utc};
use hibernator_streaming::sink::LogRecord;

pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

pub fn record(execution: &str, timestamp: DateTime<Utc>, message: &str) -> LogRecord {
    LogRecord {
        execution_id: execution.to_string(),
        namespace: "team-a".to_string(),
        plan: "prod-offhours".to_string(),
        target: "ec2".to_string(),
        timestamp,
        level: "INFO".to_string(),
        message: message.to_string(),
        fields: BTreeMap::new(),
        started: None,
    }
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

#[derive(Clone, Default)]
struct State {
    requests: Arc<Mutex<Vec<Captured>>>,
    /// Statuses for the next requests (then 200), with a response body.
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
}

/// A local HTTP receiver recording every request.
pub struct Receiver {
    pub addr: SocketAddr,
    state: State,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn capture(
    axum::extract::State(state): axum::extract::State<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.requests.lock().unwrap().push(Captured {
        method,
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    let (status, body) = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, r#"{"text":"Success","code":0}"#.to_string()));
    (StatusCode::from_u16(status).unwrap(), body)
}

impl Receiver {
    pub async fn start() -> Self {
        let state = State::default();
        let app = axum::Router::new()
            .fallback(capture)
            .with_state(state.clone())
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next requests answer with these statuses and bodies.
    pub fn script(&self, responses: &[(u16, &str)]) {
        let mut script = self.state.script.lock().unwrap();
        script.extend(responses.iter().map(|(s, b)| (*s, b.to_string())));
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().unwrap().clone()
    }
}

/// A closed local port (bound then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn fast_retry(max_retries: u32) -> hibernator_streaming::sink::RetryPolicy {
    hibernator_streaming::sink::RetryPolicy {
        max_retries,
        initial_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(20),
    }
}
