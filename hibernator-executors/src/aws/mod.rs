//! AWS executors and their connector (feature `aws`).

pub mod connector;
pub mod eks;
pub mod error;
pub mod wait;
