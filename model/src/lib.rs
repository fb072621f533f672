//! Stateright models built on the arqon-core state machines: each machine alone and the distributed system.
//!
//! Nothing here re-implements a machine. [`machine_model::MachineModel`] explores a machine's
//! own `step` over its exploration alphabet; [`cluster`] runs the presence machine inside
//! stateright actors. [`run`] checks a model under a bound and turns every property into an
//! [`run::Outcome`] (verdict, states, depth, time, and a readable trace for each discovery);
//! [`suite`] lists every model `cargo xtask verify` runs.

pub mod cluster;
pub mod coverage;
pub mod leases;
pub mod machine_model;
pub mod recovery;
pub mod replicas;
pub mod run;
pub mod sim;
pub mod suite;

/// Interns a string made at run time for stateright's `&'static str` property names. Models
/// are built a handful of times per process, so the leak is bounded.
pub(crate) fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}
