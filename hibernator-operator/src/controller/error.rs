//! Controller errors, each with a bounded category for metrics.

use hibernator_kube::JobBuildError;

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action} {object}: {source}")]
    Kube {
        /// What was attempted (`list Jobs`, `create Job`, …).
        action: &'static str,
        /// The object or collection, e.g. `ns/hibernator-restore-p`.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Runner Jobs recorded in the (already written) status could not be
    /// created. The reconcile fails so that `error_policy` backs off and the
    /// next reconcile creates them again under the same names.
    #[error(
        "creating {failed} of {requested} runner Job(s) of HibernatePlan {plan} failed: {source}"
    )]
    CreateJobs {
        /// `namespace/name` of the plan.
        plan: String,
        /// How many creates failed.
        failed: usize,
        /// How many Jobs the reconcile asked for.
        requested: usize,
        /// The first API error.
        #[source]
        source: kube::Error,
    },
    /// The status changed since it was read (stale cache): retry soon.
    #[error("status of HibernatePlan {plan} changed concurrently; retrying")]
    Conflict {
        /// `namespace/name` of the plan.
        plan: String,
    },
    /// A runner Job could not be built.
    #[error("building runner Job for HibernatePlan {plan}: {source}")]
    Build {
        /// `namespace/name` of the plan.
        plan: String,
        /// Why.
        #[source]
        source: JobBuildError,
    },
    /// The spec is invalid; waits for a change.
    #[error("HibernatePlan {plan} is invalid: {message}")]
    Invalid {
        /// `namespace/name` of the plan.
        plan: String,
        /// The first validation error.
        message: String,
    },
    /// Encoding an object failed.
    #[error("encoding {what}: {source}")]
    Encode {
        /// What was encoded.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Serving health or metrics failed.
    #[error("serving {what} on {addr}: {source}")]
    Serve {
        /// `health` or `metrics`.
        what: &'static str,
        /// The listen address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runner streaming server could not be set up or started.
    #[error("streaming server: {message}")]
    Streaming {
        /// What failed.
        message: String,
    },
    /// Leader election lost the Lease.
    #[error("lost leadership (Lease {lease})")]
    LostLease {
        /// `namespace/name` of the Lease.
        lease: String,
    },
}

impl Error {
    /// Bounded category for the `hibernator_reconcile_errors_total` label.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::CreateJobs { .. } => "create_jobs",
            Self::Conflict { .. } => "conflict",
            Self::Build { .. } => "build",
            Self::Invalid { .. } => "invalid",
            Self::Encode { .. } => "encode",
            Self::Serve { .. } => "serve",
            Self::LostLease { .. } => "leader",
            Self::Streaming { .. } => "streaming",
        }
    }

    /// A Kubernetes API error with context.
    pub fn kube(action: &'static str, object: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action,
            object: object.into(),
            source,
        }
    }
}

/// Whether an API error is `409 Conflict`.
pub fn is_conflict(error: &kube::Error) -> bool {
    status_code(error) == Some(409)
}

/// Whether an API error is `404 Not Found`.
pub fn is_not_found(error: &kube::Error) -> bool {
    status_code(error) == Some(404)
}

/// Whether an API error is `409 AlreadyExists`.
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.reason == "AlreadyExists")
        || status_code(error) == Some(409)
}

fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
