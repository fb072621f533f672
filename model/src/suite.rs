//! Every model `cargo xtask verify` runs, with its default (CI) and deep bounds, and the Explorer.

use std::time::Duration;

use arqon_core::lease::Lease;
use arqon_core::presence::Presence;
use arqon_core::rollout::Rollout;
use arqon_core::session::{SessionConfig, SessionMachine};
use stateright::Model;

use crate::cluster::{self, ClusterConfig};
use crate::leases;
use crate::machine_model::{self, Checkable, MachineModel};
use crate::recovery;
use crate::replicas;
use crate::run::{self, Bound, Outcome};

/// The session machine as explored: one protocol error and one slow drop tolerated, so the
/// closing rows are within a few events.
pub fn session_machine() -> SessionMachine {
    SessionMachine {
        config: SessionConfig {
            max_protocol_errors: 1,
            slow_consumer_threshold: 1,
            ..SessionConfig::default()
        },
    }
}

/// The models, by name.
pub const MODELS: &[&str] = &[
    "session", "presence", "rollout", "lease", "cluster", "replicas", "leases", "recovery",
];

/// Why a model could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// No model has that name.
    #[error("no model named {0:?}; the models are {MODELS:?}")]
    UnknownModel(String),
}

/// How hard to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The CI bound: the whole suite in well under two minutes on two cores.
    Default,
    /// A deeper bound, for a release or a change to a machine.
    Deep,
}

fn machine_bound(name: &str, depth: Depth) -> Bound {
    let (default, deep) = match name {
        "session" => (12, 15),
        "presence" => (10, 12),
        "replicas" | "recovery" => (16, 24),
        "leases" => (16, 20),
        _ => (14, 20),
    };
    match depth {
        Depth::Default => Bound {
            depth: default,
            timeout: Duration::from_secs(20),
            max_states: 2_000_000,
        },
        Depth::Deep => Bound {
            depth: deep,
            timeout: Duration::from_mins(10),
            max_states: 10_000_000,
        },
    }
}

fn cluster_setup(depth: Depth) -> (ClusterConfig, Bound) {
    match depth {
        Depth::Default => (
            ClusterConfig::small(),
            Bound {
                depth: 14,
                timeout: Duration::from_mins(1),
                // About 2.5 GB of states: two engineers' test runs must fit the shared box.
                max_states: 2_000_000,
            },
        ),
        Depth::Deep => (
            ClusterConfig::deep(),
            Bound {
                depth: 22,
                timeout: Duration::from_mins(30),
                // About 12 GB: a deep run wants the box to itself.
                max_states: 10_000_000,
            },
        ),
    }
}

fn machine<M>(name: &str, machine: M, depth: Depth) -> Vec<Outcome>
where
    M: Checkable,
{
    run::check(
        name,
        MachineModel::new(machine),
        machine_bound(name, depth),
        machine_model::describe::<M>,
    )
}

/// Checks the named model.
pub fn check(name: &str, depth: Depth) -> Result<Vec<Outcome>, SuiteError> {
    Ok(match name {
        "session" => machine(name, session_machine(), depth),
        "presence" => machine(name, Presence::default(), depth),
        "rollout" => machine(name, Rollout, depth),
        "lease" => machine(name, Lease::default(), depth),
        "cluster" => {
            let (config, bound) = cluster_setup(depth);
            run::check(
                name,
                cluster::cluster(config, cluster::real_presence()),
                bound,
                cluster::describe,
            )
        }
        "replicas" => run::check(
            name,
            replicas::replicas_model(),
            machine_bound(name, depth),
            replicas::describe,
        ),
        "leases" => run::check(
            name,
            leases::leases_model(),
            machine_bound(name, depth),
            leases::describe,
        ),
        "recovery" => run::check(
            name,
            recovery::recovery_model(),
            machine_bound(name, depth),
            recovery::describe,
        ),
        other => return Err(SuiteError::UnknownModel(other.to_owned())),
    })
}

/// Serves stateright's Explorer for the named model on `address` (blocks while it serves).
pub fn explore(name: &str, address: &str) -> Result<(), SuiteError> {
    match name {
        "session" => serve(MachineModel::new(session_machine()), address),
        "presence" => serve(MachineModel::new(Presence::default()), address),
        "rollout" => serve(MachineModel::new(Rollout), address),
        "lease" => serve(MachineModel::new(Lease::default()), address),
        "leases" => serve(leases::leases_model(), address),
        "cluster" => serve(
            cluster::cluster(ClusterConfig::small(), cluster::real_presence()),
            address,
        ),
        "replicas" => serve(replicas::replicas_model(), address),
        "recovery" => serve(recovery::recovery_model(), address),
        other => return Err(SuiteError::UnknownModel(other.to_owned())),
    }
    Ok(())
}

fn serve<M>(model: M, address: &str)
where
    M: Model + Send + Sync + 'static,
    M::State: std::fmt::Debug + std::hash::Hash + Send + Sync + Clone + PartialEq,
    M::Action: std::fmt::Debug + Send + Sync + Clone + PartialEq,
{
    let _checker = model.checker().serve(address);
}
