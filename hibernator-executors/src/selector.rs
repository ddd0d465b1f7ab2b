//! Label selectors, re-exported from [`hibernator_core::selector`] (where
//! third-party executors find them too).

pub use hibernator_core::selector::{LabelSelector, Operator, Requirement, exact_match};
