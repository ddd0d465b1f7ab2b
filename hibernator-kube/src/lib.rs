//! # hibernator-kube
//!
//! The Kubernetes adapters of Hibernator, for the operator and for tools
//! that embed its pieces:
//!
//! - [`restore_store`]: [`ConfigMapRestoreStore`], the restore ledger of a
//!   plan in its ConfigMap, conflict-safe;
//! - [`jobs`]: [`build_job`], the runner Job of one attempt decided by
//!   `hibernator_reconcile`;
//! - [`resolve`]: what one runner execution needs from the cluster (plan,
//!   target, connector, Secrets) and the executor built from them;
//! - [`controls`]: the patches that suspend, resume, override and retry a
//!   plan, read back by `hibernator_reconcile::controls`.
//!
//! Labels, annotations and names come from `hibernator_core::wellknown`.

pub mod controls;
pub mod jobs;
pub mod resolve;
pub mod restore_store;

pub use jobs::{JobBuildError, RunnerSettings, build_enforce_job, build_job};
pub use resolve::{ResolveError, Resolved, resolve};
pub use restore_store::ConfigMapRestoreStore;
