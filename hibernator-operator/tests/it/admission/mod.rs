//! The validating admission webhook: review decisions and TLS reload.

// Helpers outside #[test] functions unwrap like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod review;
mod tls;
