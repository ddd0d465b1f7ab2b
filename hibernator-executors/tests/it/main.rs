//! Integration tests of the executors against moto server.

mod eks;
mod support;
