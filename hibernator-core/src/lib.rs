//! # hibernator-core
//!
//! The embeddable heart of Hibernator: CRD types, the schedule engine, the
//! planner and dispatcher, validation, restore-ledger types, the
//! [`Executor`](executor::Executor) trait and the helpers executor authors
//! need (bounded waits in [`executor`], selectors and name rules in
//! [`selector`], the conformance kit with feature `testing`). It depends on
//! no Kubernetes client, no AWS SDK and no gRPC stack, so services that only
//! want to ask "is this plan off now, and what runs first?" pull in nothing
//! heavy.
//!
//! ```
//! use hibernator_core::{input::PlanDocuments, schedule::CompiledSchedule};
//! let docs = PlanDocuments::from_yaml(r#"
//! apiVersion: hibernator.dev/v1alpha1
//! kind: HibernatePlan
//! metadata: {name: dev}
//! spec:
//!   schedule:
//!     timezone: Europe/Berlin
//!     offHours: [{start: "20:00", end: "06:00", daysOfWeek: [MON, TUE, WED, THU, FRI]}]
//!   targets: []
//! "#).unwrap();
//! let schedule = CompiledSchedule::compile(&docs.plan.spec.schedule, &docs.exceptions).unwrap();
//! let at = "2026-11-23T21:00:00+01:00".parse().unwrap();
//! assert!(schedule.is_off(at));
//! ```

pub mod calendar;
pub mod crd;
pub mod cycle;
pub mod diag;
pub mod duration;
pub mod executor;
pub mod input;
pub mod params;
pub mod planner;
pub mod readyby;
pub mod restore;
pub mod schedule;
pub mod selector;
pub mod types;
pub mod validation;
pub mod wellknown;
