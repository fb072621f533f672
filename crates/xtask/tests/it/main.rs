//! Integration tests of the `xtask` binary, one module per area.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

mod ci_bite;
mod tidy;
