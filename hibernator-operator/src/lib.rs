//! # hibernator-operator
//!
//! Wiring of the `hibernator` binary: command-line interface today; the
//! controller, runner and admission webhook subcommands land with the
//! operator issue. Decisions live in `hibernator-core`; this crate only turns
//! them into side effects and output.

pub mod cli;
pub mod controller;
pub mod demo;
pub mod plugin;
pub mod restore_store;
pub mod run;
pub mod runner;
pub mod webhook;
