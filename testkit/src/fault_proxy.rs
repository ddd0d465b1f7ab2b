//! A fault-injecting HTTP proxy in front of an AWS endpoint (moto).
//!
//! moto answers every call instantly and never throttles. Real AWS does. The
//! proxy forwards requests to the upstream endpoint and, at a configured
//! rate, answers instead with the error each service's protocol uses for
//! throttling or an internal error, so the AWS SDK's and our own retry
//! policies are exercised for real. It also counts requests per service and
//! action (`ec2`/`DescribeInstances`), which tests use to assert call
//! budgets.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How faults are injected.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// Probability in `[0, 1]` that a request gets a fault instead of being forwarded.
    pub rate: f64,
    /// Seed of the random generator, so a failing test can be replayed.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self { rate: 0.0, seed: 7 }
    }
}

/// Request counts of one service action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests forwarded to the upstream.
    pub forwarded: u64,
    /// Requests answered with an injected fault.
    pub injected: u64,
}

impl Counts {
    /// Forwarded plus injected.
    pub fn total(&self) -> u64 {
        self.forwarded + self.injected
    }
}

/// `(service, action)`, e.g. `("ec2", "DescribeInstances")`.
pub type ActionKey = (String, String);

struct State {
    upstream: String,
    rate: Mutex<f64>,
    rng: Mutex<StdRng>,
    counts: Mutex<BTreeMap<ActionKey, Counts>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free 127.0.0.1 port forwarding to `upstream`
    /// (e.g. `http://127.0.0.1:5000`).
    pub async fn start(upstream: &str, config: FaultConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            rate: Mutex::new(config.rate.clamp(0.0, 1.0)),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            counts: Mutex::new(BTreeMap::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint,
            state,
            task,
        })
    }

    /// The proxy's URL, to use as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Changes the fault rate from now on.
    pub fn set_rate(&self, rate: f64) {
        if let Ok(mut r) = self.state.rate.lock() {
            *r = rate.clamp(0.0, 1.0);
        }
    }

    /// Counts per `(service, action)` so far.
    pub fn counts(&self) -> BTreeMap<ActionKey, Counts> {
        self.state
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Counts of one action.
    pub fn count(&self, service: &str, action: &str) -> Counts {
        self.counts()
            .get(&(service.to_string(), action.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// All requests to a service (forwarded and injected).
    pub fn service_total(&self, service: &str) -> u64 {
        self.counts()
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|(_, c)| c.total())
            .sum()
    }

    /// Requests answered with a fault, all services.
    pub fn injected_total(&self) -> u64 {
        self.counts().values().map(|c| c.injected).sum()
    }

    /// Forgets the counts.
    pub fn reset_counts(&self) {
        if let Ok(mut c) = self.state.counts.lock() {
            c.clear();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("bad body: {e}"))),
    };
    let service = service_of(&parts.headers);
    let action = action_of(&service, parts.method.as_str(), parts.uri.path(), &body);
    let inject = {
        let rate = state.rate.lock().map(|r| *r).unwrap_or(0.0);
        rate > 0.0
            && state
                .rng
                .lock()
                .map(|mut rng| rng.random_bool(rate))
                .unwrap_or(false)
    };
    let seq = {
        let mut counts = match state.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let entry = counts.entry((service.clone(), action)).or_default();
        if inject {
            entry.injected += 1;
        } else {
            entry.forwarded += 1;
        }
        entry.total()
    };
    if inject {
        return Ok(fault(&service, seq));
    }
    let uri = format!(
        "{}{}",
        state.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in parts.headers.iter() {
        if name != hyper::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let Ok(forward) = forward.body(Full::new(body)) else {
        return Ok(plain(
            StatusCode::BAD_GATEWAY,
            "cannot build upstream request".into(),
        ));
    };
    match state.client.request(forward).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Response::from_parts(parts, Full::new(bytes)))
        }
        Err(e) => Ok(plain(StatusCode::BAD_GATEWAY, format!("upstream: {e}"))),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r
}

/// The service from the SigV4 credential scope: `Credential=AKID/date/region/ec2/aws4_request`.
fn service_of(headers: &hyper::HeaderMap) -> String {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string()
}

/// The API action: `Action=` of query-protocol bodies, or the REST route for EKS.
fn action_of(service: &str, method: &str, path: &str, body: &[u8]) -> String {
    if let Some(action) = std::str::from_utf8(body).ok().and_then(|text| {
        text.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_string)
    }) {
        return action;
    }
    if service == "eks" {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let name = match (method, segments.as_slice()) {
            ("GET", ["clusters"]) => "ListClusters",
            ("GET", ["clusters", _]) => "DescribeCluster",
            ("POST", ["clusters"]) => "CreateCluster",
            ("GET", ["clusters", _, "node-groups"]) => "ListNodegroups",
            ("POST", ["clusters", _, "node-groups"]) => "CreateNodegroup",
            ("GET", ["clusters", _, "node-groups", _]) => "DescribeNodegroup",
            ("POST", ["clusters", _, "node-groups", _, "update-config"]) => "UpdateNodegroupConfig",
            ("GET", ["clusters", _, "updates", ..]) => "DescribeUpdate",
            _ => "",
        };
        if !name.is_empty() {
            return name.to_string();
        }
    }
    format!("{method} {path}")
}

/// The error a service returns when throttled, or (every other fault) an internal error.
fn fault(service: &str, seq: u64) -> Response<Full<Bytes>> {
    let throttle = seq.is_multiple_of(2);
    let request_id = format!("injected-fault-{seq}");
    let (status, content_type, error_type, body) = match service {
        "ec2" => {
            let (status, code) = if throttle {
                (StatusCode::SERVICE_UNAVAILABLE, "RequestLimitExceeded")
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            };
            (
                status,
                "text/xml",
                None,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
                ),
            )
        }
        "eks" => {
            let (status, code) = if throttle {
                (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException")
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "ServerException")
            };
            (
                status,
                "application/json",
                Some(code),
                format!("{{\"message\":\"injected by the test proxy ({request_id})\"}}"),
            )
        }
        _ => {
            // awsQuery services: rds, sts, ...
            let (status, kind, code) = if throttle {
                (StatusCode::BAD_REQUEST, "Sender", "Throttling")
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Receiver",
                    "ServiceUnavailable",
                )
            };
            (
                status,
                "text/xml",
                None,
                format!(
                    "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
                ),
            )
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    if let Some(code) = error_type {
        response.headers_mut().insert(
            "x-amzn-errortype",
            hyper::header::HeaderValue::from_static(code),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_come_from_the_credential_scope() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-central-1/rds/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .unwrap(),
        );
        assert_eq!(service_of(&headers), "rds");
        assert_eq!(service_of(&hyper::HeaderMap::new()), "unknown");
    }

    #[test]
    fn actions_come_from_query_bodies_or_eks_routes() {
        assert_eq!(
            action_of(
                "ec2",
                "POST",
                "/",
                b"Action=DescribeInstances&Version=2016-11-15"
            ),
            "DescribeInstances"
        );
        assert_eq!(
            action_of(
                "eks",
                "POST",
                "/clusters/c/node-groups/ng/update-config",
                b"{}"
            ),
            "UpdateNodegroupConfig"
        );
        assert_eq!(
            action_of("eks", "GET", "/clusters/c/node-groups", b""),
            "ListNodegroups"
        );
        assert_eq!(action_of("x", "GET", "/a", b""), "GET /a");
    }
}
