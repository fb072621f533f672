//! A seeded, deterministic simulation of a whole cluster (issue 16, `specs/simulation.md`): the
//! sans-IO machines of several nodes (Session, Presence, Lease, the governance `ControlPlane`), the
//! spine between them, the lease and audit stores, and the clients, run by one seeded scheduler with
//! injected crashes, partitions, message loss, delay and reordering.
//!
//! Nothing decides here that a machine decides in the product: the node shell ([`node`]) only runs
//! the machines' effects, the way the Shield and the Brain do. A seed fixes everything (the
//! scenario, the faults and every delay), so a failing seed replays exactly: `cargo xtask sim
//! --seed N --trace`. The invariants ([`invariants`]) are checked after every step.

pub mod config;
pub mod invariants;
pub mod node;
pub mod world;
