//! Leader election with a `coordination.k8s.io/v1` Lease: one active
//! controller per installation, standby replicas take over when the holder
//! stops renewing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::error::{Error, is_already_exists, is_conflict, is_not_found};

/// Lease settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_every: Duration,
}

/// Outcome of one acquisition attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// We hold the Lease.
    Held,
    /// Another live replica holds it.
    HeldByOther,
}

fn micro(at: DateTime<Utc>) -> MicroTime {
    let micros = at.timestamp_micros();
    MicroTime(Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn from_micro(t: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.0.as_microsecond()).unwrap_or_default()
}

/// Whether a Lease spec is free for `identity` at `now` (unheld, ours, or expired).
pub fn may_take(spec: &LeaseSpec, identity: &str, now: DateTime<Utc>) -> bool {
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == identity => true,
        Some(_) => {
            let renewed = spec.renew_time.as_ref().map(from_micro).unwrap_or_default();
            let duration =
                chrono::Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
            renewed + duration < now
        }
    }
}

/// Tries once to acquire or renew the Lease.
pub async fn try_acquire(
    api: &Api<Lease>,
    config: &LeaseConfig,
    now: DateTime<Utc>,
) -> Result<LeaseState, Error> {
    let key = format!("{}/{}", config.namespace, config.name);
    let seconds = i32::try_from(config.lease_duration.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    match api.get_opt(&config.name).await {
        Err(e) => Err(Error::kube("get Lease", key, e)),
        Ok(None) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(micro(now)),
                    renew_time: Some(micro(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(LeaseState::Held),
                Err(e) if is_already_exists(&e) => Ok(LeaseState::HeldByOther),
                Err(e) => Err(Error::kube("create Lease", key, e)),
            }
        }
        Ok(Some(mut lease)) => {
            let spec = lease.spec.clone().unwrap_or_default();
            if !may_take(&spec, &config.identity, now) {
                return Ok(LeaseState::HeldByOther);
            }
            let ours = spec.holder_identity.as_deref() == Some(config.identity.as_str());
            let mut next = spec;
            if !ours {
                next.holder_identity = Some(config.identity.clone());
                next.acquire_time = Some(micro(now));
                next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
            }
            next.renew_time = Some(micro(now));
            next.lease_duration_seconds = Some(seconds);
            lease.spec = Some(next);
            match api
                .replace(&config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(LeaseState::Held),
                Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(LeaseState::HeldByOther),
                Err(e) => Err(Error::kube("update Lease", key, e)),
            }
        }
    }
}

/// Waits until this replica holds the Lease (retrying every `renew_every`).
pub async fn acquire(api: &Api<Lease>, config: &LeaseConfig) {
    loop {
        match try_acquire(api, config, Utc::now()).await {
            Ok(LeaseState::Held) => {
                tracing::info!(lease = %config.name, identity = %config.identity, "acquired leadership");
                return;
            }
            Ok(LeaseState::HeldByOther) => {}
            Err(error) => tracing::warn!(%error, "leader election"),
        }
        tokio::time::sleep(config.renew_every).await;
    }
}

/// Renews the Lease until renewal fails for longer than the lease duration;
/// then returns [`Error::LostLease`] (the caller stops the controller).
pub async fn keep(api: &Api<Lease>, config: &LeaseConfig) -> Error {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(config.renew_every).await;
        match try_acquire(api, config, Utc::now()).await {
            Ok(LeaseState::Held) => last_renewed = tokio::time::Instant::now(),
            Ok(LeaseState::HeldByOther) => {
                return Error::LostLease {
                    lease: format!("{}/{}", config.namespace, config.name),
                };
            }
            Err(error) => {
                tracing::warn!(%error, "renewing Lease");
                if last_renewed.elapsed() > config.lease_duration {
                    return Error::LostLease {
                        lease: format!("{}/{}", config.namespace, config.name),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn expired_leases_of_others_may_be_taken() {
        let spec = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro(at("2026-11-22T10:00:00Z"))),
            ..LeaseSpec::default()
        };
        assert!(may_take(&spec, "a", at("2026-11-22T10:00:05Z")));
        assert!(!may_take(&spec, "b", at("2026-11-22T10:00:10Z")));
        assert!(may_take(&spec, "b", at("2026-11-22T10:00:16Z")));
        assert!(may_take(
            &LeaseSpec::default(),
            "b",
            at("2026-11-22T10:00:00Z")
        ));
    }
}
