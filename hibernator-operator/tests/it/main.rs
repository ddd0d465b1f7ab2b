//! Integration tests of the operator crate (one binary, modules per area):
//! the controller with the Job simulator (`controller`), the runner, the
//! restore ConfigMap store and the Job simulator itself (`runner`), the
//! admission webhook (`admission`), the binary's log output (`logging`),
//! and the built binary as processes (`process`).

mod admission;
mod controller;
mod logging;
mod notify;
mod plugin;
mod process;
mod runner;
