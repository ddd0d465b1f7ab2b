//! AWS executors and their connector (feature `aws`).

pub mod connector;
pub mod error;
pub mod factory;
pub mod wait;

pub use factory::executor_for;
