//! Example custom executor (see README).
