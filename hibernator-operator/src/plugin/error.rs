//! Errors of the kubectl plugin.

/// What can go wrong in a plugin command. Messages name the object (kind,
/// name, namespace) or the option involved.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Bad command-line arguments (clap's message, with usage).
    #[error("{0}")]
    Usage(String),
    /// No usable kubeconfig or cluster.
    #[error(
        "cannot load the Kubernetes configuration{ctx}: {message} (hint: set KUBECONFIG or pass --kubeconfig, and check `kubectl config current-context`)",
        ctx = .context.as_deref().map(|c| format!(" for context {c:?}")).unwrap_or_default()
    )]
    Config {
        /// The context asked for, if any.
        context: Option<String>,
        /// What failed.
        message: String,
    },
    /// The cluster could not be reached.
    #[error(
        "cannot reach the cluster while trying to {what}: {source} (hint: is the cluster up and the kubeconfig's server address right?)"
    )]
    Unreachable {
        /// What the command was doing.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An object does not exist.
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// Namespace searched.
        namespace: String,
    },
    /// The API server refused a request.
    #[error("cannot {what}: {source}")]
    Api {
        /// What the command was doing.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// `--until` is neither RFC 3339 nor a duration.
    #[error("--until {value:?}: {message}")]
    InvalidUntil {
        /// The value given.
        value: String,
        /// Why it was rejected.
        message: String,
    },
    /// `--timezone` is not an IANA time zone.
    #[error("--timezone {0:?} is not an IANA time zone such as Europe/Berlin")]
    InvalidTimezone(String),
    /// The plan's schedule or exceptions do not compile.
    #[error("plan {plan}: {source}")]
    Schedule {
        /// `namespace/name` of the plan.
        plan: String,
        /// The schedule error.
        #[source]
        source: hibernator_core::schedule::ScheduleError,
    },
    /// A restore record cannot be read.
    #[error("restore data of plan {plan}: {source}")]
    Restore {
        /// `namespace/name` of the plan.
        plan: String,
        /// The decode error.
        #[source]
        source: hibernator_core::restore::StoreError,
    },
    /// A target name that the plan does not have.
    #[error("plan {plan} has no target {target:?} (targets: {known})")]
    UnknownTarget {
        /// `namespace/name` of the plan.
        plan: String,
        /// The target asked for.
        target: String,
        /// The plan's targets, comma-separated.
        known: String,
    },
    /// Nothing to show logs of.
    #[error("plan {plan}: {message}")]
    NoRunners {
        /// `namespace/name` of the plan.
        plan: String,
        /// What is missing.
        message: String,
    },
    /// A price table entry is malformed.
    #[error("price ConfigMap {config_map}: key {key:?} = {value:?}: {message}")]
    InvalidPrice {
        /// `namespace/name` of the price ConfigMap.
        config_map: String,
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// `--month` is not `YYYY-MM`.
    #[error("--month {0:?}: expected YYYY-MM, e.g. 2026-11")]
    InvalidMonth(String),
    /// `--as-of` is not an RFC 3339 instant.
    #[error("--as-of {0:?}: expected an RFC 3339 instant, e.g. 2026-11-30T23:00:00Z")]
    InvalidAsOf(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(String),
}

impl PluginError {
    /// Maps a kube error: connection failures become [`PluginError::Unreachable`].
    pub(crate) fn api(what: impl Into<String>, source: kube::Error) -> Self {
        let what = what.into();
        match source {
            kube::Error::Api(_) => PluginError::Api { what, source },
            other => PluginError::Unreachable {
                what,
                source: other,
            },
        }
    }
}
