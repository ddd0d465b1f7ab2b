//! Benchmark placeholder replaced by the schedule work.
fn main() {}
