//! Benchmark placeholder replaced by the planner work.
fn main() {}
