//! Errors: [`ApiServerError`] for the harness, and the Kubernetes `Status`
//! responses the server sends.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use thiserror::Error;

/// Errors starting the in-process API server or preparing a test cluster.
#[derive(Debug, Error)]
pub enum ApiServerError {
    /// The loopback listener could not be bound.
    #[error("cannot bind the API server listener on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The HTTPS listener's certificates could not be made.
    #[error("cannot set up the API server's TLS: {0}")]
    Tls(String),
    /// A kube client could not be built.
    #[error("cannot build a kube client for {target}: {source}")]
    Client {
        /// Server URL or kubeconfig path.
        target: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// `HIBERNATOR_TEST_KUBECONFIG` could not be read or used.
    #[error("cannot use kubeconfig {path} (HIBERNATOR_TEST_KUBECONFIG): {message}")]
    Kubeconfig {
        /// The kubeconfig path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A request to the cluster failed.
    #[error("{what}: {source}")]
    Request {
        /// The request, naming the object.
        what: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// A CRD could not be registered.
    #[error("invalid CRD {name}: {message}")]
    InvalidCrd {
        /// CRD name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A CRD did not become Established in time on a real cluster.
    #[error("CRD {name} did not become Established within {waited:?}")]
    CrdNotEstablished {
        /// CRD name.
        name: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
}

/// A Kubernetes `Status` failure, sent as the response body.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// The reason Kubernetes uses for a bare HTTP status code.
    pub fn reason_for(code: u16) -> &'static str {
        match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        }
    }

    /// A failure for an injected fault.
    pub fn injected(code: u16, verb: &str, resource: &str) -> Self {
        Self::new(
            code,
            Self::reason_for(code),
            format!("injected fault for {verb} {resource}"),
        )
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(json!({"name": name, "group": group, "kind": kind}));
        self
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let q = qualified(group, plural);
        Self::new(404, "NotFound", format!("{q} \"{name}\" not found"))
            .with_details(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let q = qualified(group, plural);
        Self::new(
            409,
            "AlreadyExists",
            format!("{q} \"{name}\" already exists"),
        )
        .with_details(group, plural, name)
    }

    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        let q = qualified(group, plural);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {q} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(group, plural, name)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(details), Value::Object(m)) = (&self.details, &mut status) {
            m.insert("details".into(), details.clone());
        }
        status
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(code, &self.to_status());
        if code == StatusCode::TOO_MANY_REQUESTS {
            // as API Priority and Fairness answers a rejected request
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON response with the given code.
pub(crate) fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = (code, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
