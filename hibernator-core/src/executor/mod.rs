//! Executor trait (in progress).
