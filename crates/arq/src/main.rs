//! The arq CLI entry point.
fn main() {}
