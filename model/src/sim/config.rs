//! What a simulation run is made of: its shape, its faults, the planted bug (if any), and what it
//! reports.

use arqon_core::lease::LeaseConfig;

/// One second, µs.
pub const SEC: u64 = 1_000_000;
/// One millisecond, µs.
pub const MS: u64 = 1_000;
/// The tenants; both use the same room names, so a crossed delivery would show.
pub const TENANTS: [&str; 2] = ["acme", "globex"];
/// The rooms of every tenant.
pub const ROOMS: [&str; 2] = ["lobby", "ops"];
/// The tenant whose governance runs (its writer lease, control plane and audit chain).
pub const GOV_TENANT: usize = 0;

/// A fault the run may inject, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Per mille of spine messages lost.
    pub loss_per_mille: u32,
    /// The usual one-way delay, µs (uniform in the range).
    pub delay_us: (u64, u64),
    /// Per mille of messages delayed much longer (a stalled connection), µs range.
    pub spike_per_mille: u32,
    /// The delay of a spike, µs.
    pub spike_us: (u64, u64),
    /// How many node crashes (each followed by a restart) at most.
    pub crashes: u32,
    /// How many partitions of one node from the spine at most.
    pub partitions: u32,
    /// How long a partition lasts, µs.
    pub partition_us: (u64, u64),
    /// How many stalls of one node at most: for a while every message to or from it is late
    /// (a long GC pause, a congested link), none lost.
    pub stalls: u32,
    /// How long a stall lasts, µs.
    pub stall_us: (u64, u64),
    /// How late a message of a stalled node is, µs.
    pub stall_delay_us: (u64, u64),
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            loss_per_mille: 20,
            delay_us: (200, 20 * MS),
            spike_per_mille: 15,
            spike_us: (300 * MS, 3 * SEC),
            crashes: 2,
            partitions: 2,
            partition_us: (SEC, 6 * SEC),
            stalls: 4,
            stall_us: (2 * SEC, 6 * SEC),
            stall_delay_us: (SEC, 2_500 * MS),
        }
    }
}

/// A mutation of one machine's guard, planted to show the simulation finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// None: the real machines.
    None,
    /// The lease counts its belief from when an answer arrived, not from when it was asked.
    LeaseCountsFromAnswer,
    /// A presence replica reads a leave delta as a join (it forgets leaves).
    PresenceForgetsLeaves,
}

impl Bug {
    /// Every planted bug.
    pub const PLANTED: [Self; 2] = [Self::LeaseCountsFromAnswer, Self::PresenceForgetsLeaves];

    /// The bug's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::LeaseCountsFromAnswer => "lease-counts-from-answer",
            Self::PresenceForgetsLeaves => "presence-forgets-leaves",
        }
    }

    /// The bug named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::None,
            Self::LeaseCountsFromAnswer,
            Self::PresenceForgetsLeaves,
        ]
        .into_iter()
        .find(|bug| bug.name() == name)
    }
}

/// The shape of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Nodes (each a Shield with its Brain).
    pub nodes: usize,
    /// Application clients (half of each tenant).
    pub clients: usize,
    /// How long clients act and faults happen, µs of simulated time.
    pub horizon_us: u64,
    /// A quiet time after it: no faults, every node back, every client connected; then the
    /// end-state invariants are checked.
    pub quiet_us: u64,
    /// The faults.
    pub faults: Faults,
    /// The planted bug.
    pub bug: Bug,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 8,
            horizon_us: 40 * SEC,
            quiet_us: 20 * SEC,
            faults: Faults::default(),
            bug: Bug::None,
        }
    }
}

/// The writer lease's timings in the simulation: short, so failovers happen within a run, with
/// the product's proportions (a margin of a tenth of the ttl).
pub fn lease_config() -> LeaseConfig {
    LeaseConfig {
        ttl_us: 4 * SEC,
        renew_every_us: SEC,
        retry_every_us: SEC,
        margin_us: 400 * MS,
    }
}

/// How long a node waits for the lease store's answer to a create before it gives up.
pub const ACQUIRE_TIMEOUT_US: u64 = SEC;
/// Presence ticks (heartbeats, expiry sweeps), and the expiry of a silent node.
pub const PRESENCE_TICK_US: u64 = 500 * MS;
/// A node not heard from for this long loses its members.
pub const PRESENCE_TTL_US: u64 = 3 * SEC;
/// The governance writer's tick (ramps, completed rollouts).
pub const GOV_TICK_US: u64 = SEC;

/// A broken invariant: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The step at which it was seen.
    pub step: u64,
    /// Simulated time, µs.
    pub at_us: u64,
    /// The invariant's name (`specs/simulation.md`).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

/// What happened in a run, by count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub steps: u64,
    /// Room messages delivered to sessions.
    pub delivered: u64,
    /// Spine messages lost (loss or partition).
    pub lost: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Stalls.
    pub stalls: u64,
    /// Times the governance writer changed.
    pub failovers: u64,
    /// Audit records stored.
    pub audit_records: u64,
    /// Presence changes shown to sessions.
    pub presence_events: u64,
    /// Client reconnects.
    pub reconnects: u64,
}

/// The outcome of one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// A digest of every event in order: the same seed gives the same digest.
    pub digest: u64,
    /// The first broken invariant, if any (the run stops there).
    pub violation: Option<Violation>,
    /// Counts.
    pub stats: Stats,
}
