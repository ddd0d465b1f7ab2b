//! Notifications: deliveries against local HTTP receivers (payloads,
//! signatures, slow and failing receivers), and the controller delivering
//! plan events through the testkit API server, across restarts.

// fixtures and tests: a failed unwrap is a failed test
#![allow(clippy::unwrap_used)]

mod controller;
mod delivery;
pub(crate) mod receiver;
