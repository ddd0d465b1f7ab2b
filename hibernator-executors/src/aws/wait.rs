//! Polling settings of the AWS executors. The waits themselves are
//! [`hibernator_core::executor::wait_until`] and
//! [`hibernator_core::executor::wait_for_all`], which executors of other
//! crates use too.

use std::time::Duration;

pub use hibernator_core::executor::{wait_for_all, wait_until};

/// How often to poll while waiting for AWS to finish an operation.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
