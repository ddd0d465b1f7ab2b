//! Node group sizes, restore keys, the shutdown decision per node group and
//! the bounded wait for node groups to reach their target sizes. Free of SDK
//! calls so it can be tested on its own.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hibernator_core::executor::{ExecutionContext, ExecutorError, category};
use serde::{Deserialize, Serialize};

use crate::aws::wait::wait_until;

/// Prefix of the restore keys of node groups: `nodegroup/<name>`.
pub const KEY_PREFIX: &str = "nodegroup/";

/// The restore key of a node group: `nodegroup/<name>`.
pub fn node_group_key(name: &str) -> String {
    format!("{KEY_PREFIX}{name}")
}

/// The node group name of a restore key, if it is a node group key.
pub fn node_group_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(KEY_PREFIX).filter(|name| !name.is_empty())
}

/// The scaling configuration of a managed node group; the awake state
/// recorded per node group (`{"minSize":1,"desiredSize":2,"maxSize":5}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeGroupSize {
    /// `minSize`.
    pub min_size: i32,
    /// `desiredSize`.
    pub desired_size: i32,
    /// `maxSize`.
    pub max_size: i32,
}

impl NodeGroupSize {
    /// The hibernated size: min 0 and desired 0, `maxSize` kept (managed node
    /// groups reject `maxSize = 0`).
    pub fn hibernated(self) -> Self {
        Self {
            min_size: 0,
            desired_size: 0,
            max_size: self.max_size,
        }
    }

    /// True when the node group runs no nodes and may not start any (min 0, desired 0).
    pub fn is_hibernated(&self) -> bool {
        self.min_size == 0 && self.desired_size == 0
    }

    /// The restore-entry form of this size.
    pub fn to_state(self) -> serde_json::Value {
        serde_json::json!({
            "minSize": self.min_size,
            "desiredSize": self.desired_size,
            "maxSize": self.max_size,
        })
    }

    /// Reads a restore entry written by [`to_state`](Self::to_state).
    pub fn from_state(state: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(state)
    }
}

impl fmt::Display for NodeGroupSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {}/desired {}/max {}",
            self.min_size, self.desired_size, self.max_size
        )
    }
}

/// What shutdown does with one node group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownDecision {
    /// Awake: record this size, then scale to [`NodeGroupSize::hibernated`].
    Hibernate(NodeGroupSize),
    /// At min 0/desired 0 with an entry in the prior record: still hibernated
    /// from an earlier cycle; its entry holds the awake state and must stay.
    StillHibernated,
    /// At min 0/desired 0 with no entry: its owner scaled it down; it stays
    /// down and nothing is recorded.
    AlreadyAsleep,
}

/// Decides what shutdown does with a node group of size `current`;
/// `has_prior_entry` says whether the prior restore record holds its key.
pub fn decide_shutdown(current: NodeGroupSize, has_prior_entry: bool) -> ShutdownDecision {
    if !current.is_hibernated() {
        ShutdownDecision::Hibernate(current)
    } else if has_prior_entry {
        ShutdownDecision::StillHibernated
    } else {
        ShutdownDecision::AlreadyAsleep
    }
}

/// A node group as DescribeNodegroup reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeGroupView {
    /// Node group name.
    pub name: String,
    /// `status` (`ACTIVE`, `UPDATING`, …).
    pub status: String,
    /// The scaling configuration; `None` when the response had none or an
    /// incomplete one.
    pub size: Option<NodeGroupSize>,
}

impl NodeGroupView {
    /// True when the node group is `ACTIVE` with exactly `target` as its scaling configuration.
    pub fn reached(&self, target: NodeGroupSize) -> bool {
        self.status == "ACTIVE" && self.size == Some(target)
    }

    fn describe(&self) -> String {
        match self.size {
            Some(size) => format!("{}, {size}", self.status),
            None => format!("{}, no scaling configuration", self.status),
        }
    }
}

/// A wait for node groups that did not complete.
#[derive(Debug)]
pub struct WaitFailure {
    /// Node groups that had not reached their target when the wait ended.
    pub pending: Vec<String>,
    /// Why the wait ended (a timeout naming the node groups, cancellation, or
    /// the error of a DescribeNodegroup call).
    pub error: ExecutorError,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Polls `describe` until every node group in `targets` is `ACTIVE` with its
/// target size, at most for `timeout`. A wait that runs out of time fails
/// with a timeout error naming the node groups still pending and what was
/// last seen of them.
pub async fn await_node_groups<F, Fut>(
    ctx: &ExecutionContext,
    cluster: &str,
    targets: &BTreeMap<String, NodeGroupSize>,
    timeout: Duration,
    interval: Duration,
    describe: F,
) -> Result<(), WaitFailure>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<NodeGroupView, ExecutorError>>,
{
    let pending = Mutex::new(targets.clone());
    let last_seen = Mutex::new(BTreeMap::<String, String>::new());
    let what = format!("node groups of EKS cluster {cluster} reaching their target sizes");
    let result = {
        let (pending, last_seen, describe) = (&pending, &last_seen, &describe);
        wait_until(ctx, &what, timeout, interval, move || async move {
            let round: Vec<(String, NodeGroupSize)> =
                lock(pending).iter().map(|(n, s)| (n.clone(), *s)).collect();
            for (name, target) in round {
                let view = describe(name.clone()).await?;
                if view.reached(target) {
                    lock(pending).remove(&name);
                } else {
                    lock(last_seen).insert(name, view.describe());
                }
            }
            Ok(lock(pending).is_empty())
        })
        .await
    };
    let Err(error) = result else {
        return Ok(());
    };
    let pending = pending.into_inner().unwrap_or_else(PoisonError::into_inner);
    let last_seen = last_seen
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let error = if error.category == category::TIMEOUT {
        let list = pending
            .iter()
            .map(|(name, target)| {
                let seen = last_seen
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "not seen yet".to_string());
                format!("{name} (target ACTIVE, {target}; last seen {seen})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut e = ExecutorError::timeout(
            &format!("scaling node group(s) {list} of EKS cluster {cluster}"),
            timeout,
        );
        if let (1, Some(name)) = (pending.len(), pending.keys().next()) {
            e = e.with_resource(node_group_key(name));
        }
        e
    } else {
        error
    };
    Err(WaitFailure {
        pending: pending.into_keys().collect(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibernator_core::types::Operation;
    use std::sync::atomic::{AtomicU32, Ordering};

    const S: NodeGroupSize = NodeGroupSize {
        min_size: 1,
        desired_size: 2,
        max_size: 5,
    };

    fn ctx() -> ExecutionContext {
        ExecutionContext::builder("p", "t", "c1", Operation::Shutdown).build()
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(node_group_key("ng-1"), "nodegroup/ng-1");
        assert_eq!(node_group_of_key(&node_group_key("ng-1")), Some("ng-1"));
        assert_eq!(node_group_of_key("instance/i-1"), None);
        assert_eq!(node_group_of_key("nodegroup/"), None);
    }

    #[test]
    fn state_round_trips_and_rejects_garbage() {
        let state = S.to_state();
        assert_eq!(
            state,
            serde_json::json!({"minSize": 1, "desiredSize": 2, "maxSize": 5})
        );
        assert_eq!(NodeGroupSize::from_state(&state).unwrap(), S);
        assert!(NodeGroupSize::from_state(&serde_json::json!({"minSize": 1})).is_err());
        assert!(NodeGroupSize::from_state(&serde_json::json!(3)).is_err());
    }

    #[test]
    fn hibernated_keeps_max() {
        let h = S.hibernated();
        assert_eq!((h.min_size, h.desired_size, h.max_size), (0, 0, 5));
        assert!(h.is_hibernated());
        assert!(!S.is_hibernated());
        // min 0 with desired > 0 still runs nodes: awake.
        let scaled_in = NodeGroupSize {
            min_size: 0,
            desired_size: 3,
            max_size: 3,
        };
        assert!(!scaled_in.is_hibernated());
        assert_eq!(S.to_string(), "min 1/desired 2/max 5");
    }

    #[test]
    fn shutdown_decisions() {
        assert_eq!(decide_shutdown(S, false), ShutdownDecision::Hibernate(S));
        // Awake again although an old entry exists: observe the new awake state.
        assert_eq!(decide_shutdown(S, true), ShutdownDecision::Hibernate(S));
        let asleep = S.hibernated();
        assert_eq!(
            decide_shutdown(asleep, true),
            ShutdownDecision::StillHibernated
        );
        assert_eq!(
            decide_shutdown(asleep, false),
            ShutdownDecision::AlreadyAsleep
        );
    }

    fn view(status: &str, size: Option<NodeGroupSize>) -> NodeGroupView {
        NodeGroupView {
            name: "ng".into(),
            status: status.into(),
            size,
        }
    }

    #[test]
    fn reached_needs_active_and_exact_size() {
        assert!(view("ACTIVE", Some(S)).reached(S));
        assert!(!view("UPDATING", Some(S)).reached(S));
        assert!(!view("ACTIVE", Some(S.hibernated())).reached(S));
        assert!(!view("ACTIVE", None).reached(S));
    }

    #[tokio::test(start_paused = true)]
    async fn wait_succeeds_once_every_node_group_reached_its_target() {
        let calls = AtomicU32::new(0);
        let targets = BTreeMap::from([("a".to_string(), S), ("b".to_string(), S.hibernated())]);
        let result = await_node_groups(
            &ctx(),
            "dev",
            &targets,
            Duration::from_secs(60),
            Duration::from_secs(1),
            |name| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    // "a" becomes ACTIVE on its second poll; "b" at once.
                    let status = if name == "a" && n == 0 {
                        "UPDATING"
                    } else {
                        "ACTIVE"
                    };
                    let size = if name == "a" { S } else { S.hibernated() };
                    Ok(view(status, Some(size)))
                }
            },
        )
        .await;
        assert!(result.is_ok(), "{result:?}");
        // Round 1: a (updating), b (done); round 2: a only.
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn timed_out_wait_fails_naming_the_node_group() {
        let targets = BTreeMap::from([("stuck".to_string(), S), ("fine".to_string(), S)]);
        let failure = await_node_groups(
            &ctx(),
            "dev",
            &targets,
            Duration::from_secs(30),
            Duration::from_secs(5),
            |name| async move {
                let status = if name == "stuck" {
                    "UPDATING"
                } else {
                    "ACTIVE"
                };
                Ok(view(status, Some(S)))
            },
        )
        .await
        .unwrap_err();
        assert_eq!(failure.pending, ["stuck"]);
        assert_eq!(failure.error.category, category::TIMEOUT);
        assert_eq!(failure.error.resource.as_deref(), Some("nodegroup/stuck"));
        let msg = failure.error.to_string();
        assert!(msg.contains("stuck") && msg.contains("dev"), "{msg}");
        assert!(msg.contains("last seen UPDATING"), "{msg}");
        assert!(!msg.contains("fine ("), "{msg}");
    }

    #[tokio::test(start_paused = true)]
    async fn describe_errors_end_the_wait() {
        let targets = BTreeMap::from([("a".to_string(), S)]);
        let failure = await_node_groups(
            &ctx(),
            "dev",
            &targets,
            Duration::from_secs(30),
            Duration::from_secs(5),
            |_| async { Err(ExecutorError::permanent(category::AUTH, "denied")) },
        )
        .await
        .unwrap_err();
        assert_eq!(failure.pending, ["a"]);
        assert_eq!(failure.error.category, category::AUTH);
    }
}
