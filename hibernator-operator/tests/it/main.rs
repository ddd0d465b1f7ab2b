//! Integration tests of the operator (one binary, modules per area).

mod controller;
