//! An in-process Kubernetes API server for tests, and a harness that runs
//! the same tests against a real cluster.
//!
//! [`ApiServer`] is an axum server on `127.0.0.1:0` (plain HTTP, and HTTPS
//! with its own CA on a second port for in-cluster config) that a real
//! [`kube::Client`] (and `kube::runtime`'s watcher and Controller) talks to:
//! generic storage for built-in resources and CRDs, get/list (label and field
//! selectors, `limit`/`continue`), create (`generateName`), replace, delete
//! (finalizers), deletecollection, merge/JSON/strategic/apply patches,
//! resourceVersion conflicts, `metadata.generation`, the status and scale
//! subresources, `pods/log`, watches with bookmarks and `410 Expired`,
//! TokenRequest/TokenReview, and fault hooks (injected failures, latency,
//! request counters).
//!
//! [`TestCluster`] gives each test its own namespace, either on a fresh
//! in-process server or on the cluster named by `HIBERNATOR_TEST_KUBECONFIG`.
//!
//! Not implemented: admission and schema validation of built-in kinds, garbage
//! collection of owned objects (only namespace deletion cascades), controllers
//! (a Deployment's status never changes by itself), aggregated discovery,
//! protobuf, and `managedFields` (apply is a merge).

mod api_server;
mod auth;
mod cluster;
pub mod crds;
mod error;
mod faults;
mod list;
mod objects;
mod patch;
mod registry;
mod scale;
mod selectors;
mod server;
mod store;
mod tls;
mod watch;

pub use api_server::{ApiServer, install_crypto_provider};
pub use cluster::{KUBECONFIG_ENV, TestCluster};
pub use error::ApiServerError;
