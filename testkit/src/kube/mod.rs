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
//! Like a real server it defaults built-in kinds, leaves zero values of
//! `omitempty` fields out, keeps core/v1 and events.k8s.io/v1 Events in one
//! store, puts `kube-root-ca.crt` and the `default` ServiceAccount into every
//! namespace, and garbage-collects objects whose owners are gone (a
//! background task; `propagationPolicy` honoured).
//!
//! Not implemented: admission and schema validation of built-in kinds, CRD
//! schema defaulting and pruning, workload controllers (a Deployment's status
//! never changes by itself), aggregated discovery, protobuf, and
//! `managedFields` (apply is a merge).

mod api_server;
mod auth;
mod cluster;
mod controllers;
pub mod crds;
mod defaults;
mod deletion;
mod error;
mod events;
mod faults;
mod gc;
mod list;
mod namespaces;
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
