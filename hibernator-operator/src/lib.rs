//! # hibernator-operator
//!
//! Wiring of the `hibernator` binary: the command-line interface, the
//! controller, the runner, the admission webhook and the kubectl plugin,
//! all around one executor set ([`App`]). Decisions live in
//! `hibernator-core`; this crate only turns them into side effects and
//! output.

pub mod app;
pub mod cli;
pub mod controller;
pub mod local;
pub mod logging;
pub mod plugin;
pub mod runner;
pub mod webhook;

pub use app::App;

/// The global allocator of the `hibernator` binary (mimalloc).
///
/// Log ingestion allocates a few small strings per runner log line on one
/// thread and frees them on another; with glibc's malloc a quarter of the
/// streaming path's CPU samples were in the allocator, and mimalloc doubled
/// gRPC ingest throughput (numbers in
/// `docs/performance.md`). Benchmarks of the binary's code paths install the
/// same allocator: `#[global_allocator] static A: Allocator = Allocator;`.
pub use mimalloc::MiMalloc as Allocator;
