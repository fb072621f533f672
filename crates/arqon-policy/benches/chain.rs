//! Per-message overhead of policy chains: p50/p99/p999 of one- and three-policy chains.

fn main() {}
