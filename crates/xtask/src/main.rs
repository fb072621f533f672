//! Repository automation entry point (`cargo xtask`).
fn main() {}
