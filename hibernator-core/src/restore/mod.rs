//! The restore ledger: what every hibernated resource looked like while it was awake.
//!
//! One [`RestoreRecord`] exists per target per plan. It holds one
//! [`RestoreEntry`] per resource, keyed by a stable resource key such as
//! `nodegroup/ng-1`, `instance/i-0abc` or `apps/Deployment/ns/name`.
//!
//! **Invariant: an entry always holds the resource's last known awake state.**
//!
//! - A re-run of shutdown in the same cycle never replaces an entry: the first
//!   observation of the cycle wins ([`RestoreRecord::merge_shutdown`]).
//! - Executors report observations only for resources they found awake, so a
//!   resource still hibernated from an earlier cycle (whose wake-up failed)
//!   keeps its entry.
//! - A failed wake-up keeps its entries for the next attempt; entries are
//!   cleared only after that resource was restored
//!   ([`RestoreRecord::mark_restored`]).
//!
//! Records are persisted through a [`RestoreStore`] with optimistic
//! concurrency; [`update_record`] is the read-modify-write loop every caller
//! uses. [`MemoryRestoreStore`] serves tests and embedders,
//! [`FileRestoreStore`] serves `hibernator run`, and the operator provides a
//! ConfigMap-backed store.

mod file;
mod memory;
mod record;
mod store;

pub use file::FileRestoreStore;
pub use memory::MemoryRestoreStore;
pub use record::{RECORD_VERSION, RestoreEntry, RestoreRecord, UnsupportedVersion};
pub use store::{
    MAX_UPDATE_ATTEMPTS, RestoreStore, StoreError, Versioned, decode_record, update_record,
};
