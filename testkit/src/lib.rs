//! Test support shared by the Hibernator crates: fixtures for plan files.
//! The in-process Kubernetes API server and the moto harness land with their issues.
