//! A local HTTP receiver (axum on 127.0.0.1:0) that records what it gets
//! and answers as scripted: status codes, delays, or holding a request
//! until the test releases it.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Answer at once with this status.
    Status(u16),
    /// Wait, then answer with the status.
    Delay(Duration, u16),
    /// Wait until [`Receiver::release`], then answer with the status.
    Hold(u16),
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct Inner {
    /// Every request, at arrival.
    requests: Mutex<Vec<Received>>,
    /// Requests answered 2xx (the handler ran to the end).
    accepted: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Option<Answer>>,
    released: tokio::sync::Notify,
    release_all: std::sync::atomic::AtomicBool,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received = Received {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    inner.requests.lock().unwrap().push(received.clone());
    let answer = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.otherwise.lock().unwrap().clone())
        .unwrap_or(Answer::Status(200));
    let code = match answer {
        Answer::Status(code) => code,
        Answer::Delay(wait, code) => {
            tokio::time::sleep(wait).await;
            code
        }
        Answer::Hold(code) => {
            while !inner.release_all.load(std::sync::atomic::Ordering::SeqCst) {
                let notified = inner.released.notified();
                if inner.release_all.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                notified.await;
            }
            code
        }
    };
    let status = StatusCode::from_u16(code).unwrap();
    if status.is_success() {
        inner.accepted.lock().unwrap().push(received);
    }
    status
}

impl Receiver {
    /// A receiver answering `script` in order, then `otherwise` (default 200).
    pub async fn start(script: Vec<Answer>, otherwise: Option<Answer>) -> Self {
        let inner = Arc::new(Inner::default());
        *inner.script.lock().unwrap() = script.into();
        *inner.otherwise.lock().unwrap() = otherwise;
        let app = axum::Router::new()
            .fallback(axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// From now on, answer every request with `answer`.
    pub fn answer_from_now(&self, answer: Answer) {
        self.inner.script.lock().unwrap().clear();
        *self.inner.otherwise.lock().unwrap() = Some(answer);
    }

    /// Lets every held request (and every later `Hold`) answer.
    pub fn release(&self) {
        self.inner
            .release_all
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.released.notify_waiters();
    }

    /// Waits (at most 60s) until `pred` holds for the requests received so far.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) {
        self.wait_for_within(what, Duration::from_secs(60), pred)
            .await;
    }

    /// [`Receiver::wait_for`] with another timeout.
    pub async fn wait_for_within(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.requests()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "receiver: {what}; got {:#?}",
                self.requests()
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
