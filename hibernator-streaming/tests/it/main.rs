//! Integration tests of hibernator-streaming (one binary, one module per area).

mod codegen;
