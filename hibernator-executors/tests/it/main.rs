//! Integration tests of the executors against moto.

mod rds;
mod support;
