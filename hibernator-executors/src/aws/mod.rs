//! AWS executors and their connector (feature `aws`).

pub mod connector;
pub mod ec2;
pub mod eks;
pub mod error;
pub mod rds;
pub mod wait;
