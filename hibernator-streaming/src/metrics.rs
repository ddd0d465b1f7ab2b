//! Prometheus metrics of the streaming server.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a streaming request was refused (bounded label values).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AuthFailureReason {
    /// No bearer token presented.
    missing,
    /// The authorization header or the execution id was not well-formed.
    malformed,
    /// TokenReview did not authenticate the token.
    invalid,
    /// The token lacks the `hibernator-control-plane` audience.
    audience,
    /// The token has expired.
    expired,
    /// No runner Job exists for the claimed execution id.
    unknown_execution,
    /// The token's ServiceAccount or namespace is not the Job's.
    wrong_identity,
    /// The token's Pod does not belong to the Job.
    wrong_pod,
}

impl AuthFailureReason {
    /// Every reason, in a stable order.
    pub const ALL: [Self; 8] = [
        Self::missing,
        Self::malformed,
        Self::invalid,
        Self::audience,
        Self::expired,
        Self::unknown_execution,
        Self::wrong_identity,
        Self::wrong_pod,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::missing => "missing",
            Self::malformed => "malformed",
            Self::invalid => "invalid",
            Self::audience => "audience",
            Self::expired => "expired",
            Self::unknown_execution => "unknown_execution",
            Self::wrong_identity => "wrong_identity",
            Self::wrong_pod => "wrong_pod",
        }
    }
}

/// Label set of the auth failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Failure reason.
    pub reason: AuthFailureReason,
}

/// Streaming server metrics; cheap to clone (shared counters).
#[derive(Clone, Debug, Default)]
pub struct StreamingMetrics {
    /// Open gRPC log streams, `WatchProgress` watchers and in-flight webhook requests.
    pub connections_active: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Log lines accepted.
    pub logs: Counter<u64, AtomicU64>,
    /// Payload bytes received (log messages and webhook bodies).
    pub bytes_received: Counter<u64, AtomicU64>,
    /// Payload bytes sent back: gRPC answers (acks, log-stream results,
    /// `GetProgress` answers and `WatchProgress` updates) and webhook
    /// response bodies.
    pub bytes_sent: Counter<u64, AtomicU64>,
    /// Refused requests by reason.
    pub auth_failures: Family<ReasonLabel, Counter<u64, AtomicU64>>,
}

impl StreamingMetrics {
    /// Creates the metrics and registers them as `hibernator_streaming_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("hibernator_streaming");
        sub.register(
            "connections_active",
            "Open runner log streams and in-flight webhook requests",
            metrics.connections_active.clone(),
        );
        sub.register("logs", "Runner log lines accepted", metrics.logs.clone());
        sub.register(
            "bytes_received",
            "Bytes of runner payload received",
            metrics.bytes_received.clone(),
        );
        sub.register(
            "bytes_sent",
            "Bytes the streaming endpoints sent to runners and progress clients",
            metrics.bytes_sent.clone(),
        );
        sub.register(
            "auth_failures",
            "Streaming requests refused, by reason",
            metrics.auth_failures.clone(),
        );
        metrics
    }

    /// Counts one refused request.
    pub fn auth_failure(&self, reason: AuthFailureReason) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Refusals counted so far for `reason`.
    pub fn auth_failure_count(&self, reason: AuthFailureReason) -> u64 {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// Marks a connection open until the guard drops.
    pub fn connection(&self) -> ConnectionGuard {
        self.connections_active.inc();
        ConnectionGuard {
            gauge: self.connections_active.clone(),
        }
    }
}

/// Decrements `connections_active` when dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    gauge: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_the_documented_names() {
        let mut registry = Registry::default();
        let m = StreamingMetrics::register(&mut registry);
        m.logs.inc_by(3);
        m.auth_failure(AuthFailureReason::wrong_pod);
        let guard = m.connection();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("hibernator_streaming_logs_total 3"), "{out}");
        assert!(
            out.contains("hibernator_streaming_connections_active 1"),
            "{out}"
        );
        assert!(
            out.contains("hibernator_streaming_auth_failures_total{reason=\"wrong_pod\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("hibernator_streaming_bytes_received_total 0"),
            "{out}"
        );
        assert!(
            out.contains("hibernator_streaming_bytes_sent_total 0"),
            "{out}"
        );
        drop(guard);
        assert_eq!(m.connections_active.get(), 0);
    }
}
