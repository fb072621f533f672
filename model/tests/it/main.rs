//! Integration tests of the models and of everything derived from the machine definitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machines_coverage;
mod machines_golden;
mod machines_props;
mod models_check;
mod models_teeth;
mod sim_cluster;
