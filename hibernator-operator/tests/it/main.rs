//! Integration tests of the operator crate (one binary): the runner, the
//! restore ConfigMap store and the Job simulator (`runner`), the admission
//! webhook (`admission`).

mod admission;
mod runner;
