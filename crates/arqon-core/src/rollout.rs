//! Rollout: a governed variant change (seed 004), from proposal through a digest-checked approval
//! and a time-driven ramp to completion, with pause and an emergency stop back to the baseline.
//!
//! Percentages are integers in **basis points** (1 bp = 0.01 %, [`FULL_BP`] = 100 %), so states
//! are `Eq` and `Hash` and every computation is exact. [`RolloutConfig::from_percent`] converts
//! the seed's `f64` percentages. Time arrives in events (`now_us`), never read; the
//! [`RolloutTracker`] takes its randomness from a seeded `ChaCha8Rng`, so a seed replays exactly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::machine::{InvariantViolation, Machine, Step, Transition, row};

/// 100 % in basis points.
pub const FULL_BP: u32 = 10_000;
/// One minute in µs: the ramp's unit of time.
pub const MINUTE_US: u64 = 60_000_000;

/// How a variant ramps up: start at `initial_bp`, add `increment_bp_per_minute` every minute,
/// never exceed `max_bp`. Valid when `initial_bp <= max_bp <= FULL_BP`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    Default,
)]
pub struct RolloutConfig {
    /// Starting share, bp.
    pub initial_bp: u32,
    /// Increase per minute of ramping, bp.
    pub increment_bp_per_minute: u32,
    /// Cap, bp.
    pub max_bp: u32,
}

impl RolloutConfig {
    /// Checks `initial_bp <= max_bp <= FULL_BP`.
    pub fn validate(&self) -> Result<(), RolloutRejection> {
        if self.max_bp > FULL_BP || self.initial_bp > self.max_bp {
            return Err(RolloutRejection::InvalidConfig(*self));
        }
        Ok(())
    }

    /// Converts the seed's percentages (`5.0` = 5 %) to basis points, rounding to the nearest
    /// basis point, and validates the result. NaN, infinite and negative values are refused.
    pub fn from_percent(
        initial_percent: f64,
        increment_per_minute: f64,
        max_percent: f64,
    ) -> Result<Self, RolloutRejection> {
        let config = Self {
            initial_bp: percent_to_bp(initial_percent)?,
            increment_bp_per_minute: percent_to_bp(increment_per_minute)?,
            max_bp: percent_to_bp(max_percent)?,
        };
        config.validate()?;
        Ok(config)
    }

    /// The share reached `elapsed_us` after ramping from `base_bp`, capped at `max_bp`.
    pub fn percent_after(&self, base_bp: u32, elapsed_us: u64) -> u32 {
        let gained = u128::from(self.increment_bp_per_minute) * u128::from(elapsed_us)
            / u128::from(MINUTE_US);
        let reached = u128::from(base_bp).saturating_add(gained);
        u32::try_from(reached.min(u128::from(self.max_bp))).unwrap_or(self.max_bp)
    }
}

fn percent_to_bp(percent: f64) -> Result<u32, RolloutRejection> {
    let bp = (percent * 100.0).round();
    if bp.is_finite() && (0.0..=f64::from(FULL_BP)).contains(&bp) {
        // The range check above makes the conversion exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(bp as u32)
    } else {
        Err(RolloutRejection::InvalidPercent)
    }
}

/// The canonical digest of a proposal (hex SHA-256, defined by the governance spec). The
/// machine only compares digests.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Digest(pub String);

/// The proposal a rollout is about.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ProposalRef {
    /// The proposal's id.
    pub id: String,
    /// Its canonical digest.
    pub digest: Digest,
    /// The variant it would roll out, if any.
    pub variant: Option<u64>,
}

/// Where a rollout is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, Default)]
pub enum RolloutPhase {
    /// Nothing in flight; the baseline applies.
    #[default]
    Idle,
    /// A proposal waits for a decision.
    Proposed {
        /// The proposal.
        proposal: ProposalRef,
    },
    /// Approved with a rollout config; the ramp starts at the next step.
    Approved {
        /// The proposal.
        proposal: ProposalRef,
        /// The approved config.
        config: RolloutConfig,
    },
    /// Ramping: the share is `percent_bp`, computed as `base_bp` plus the ramp since `origin_us`.
    Ramping {
        /// The proposal.
        proposal: ProposalRef,
        /// The approved config.
        config: RolloutConfig,
        /// The current share, bp.
        percent_bp: u32,
        /// The share the ramp (re)started from, bp.
        base_bp: u32,
        /// When the ramp (re)started, µs.
        origin_us: u64,
    },
    /// Paused: the share holds still.
    Paused {
        /// The proposal.
        proposal: ProposalRef,
        /// The approved config.
        config: RolloutConfig,
        /// The held share, bp (0 when paused before the ramp started).
        percent_bp: u32,
        /// Whether the ramp had started (resume goes back to ramping, else to approved).
        started: bool,
    },
    /// The ramp reached its cap.
    Complete {
        /// The proposal.
        proposal: ProposalRef,
        /// The approved config.
        config: RolloutConfig,
    },
    /// Stopped at the safe baseline, adaptation frozen until a resume.
    EmergencyStopped,
}

/// The rollout state of one governed target: its phase and the catalog version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, Default)]
pub struct RolloutState {
    /// The latest catalog version accepted.
    pub catalog_version: u64,
    /// Where the rollout is.
    pub phase: RolloutPhase,
}

impl RolloutState {
    /// The rollout of `proposal` approved with `config` and stepped once at `now_us`
    /// (`Propose`, `Approve`, `Step`): where the control plane and a [`RolloutTracker`] start.
    pub fn approved(
        proposal: ProposalRef,
        config: RolloutConfig,
        now_us: u64,
    ) -> Result<Self, RolloutRejection> {
        let approve = RolloutEvent::Approve {
            proposal_id: proposal.id.clone(),
            digest: proposal.digest.clone(),
            config,
        };
        [
            RolloutEvent::Propose { proposal },
            approve,
            RolloutEvent::Step { now_us },
        ]
        .iter()
        .try_fold(Self::default(), |state, event| {
            Ok(Rollout.step(&state, event)?.state)
        })
    }

    /// The share of traffic the new variant gets now, bp (0 means the baseline everywhere).
    pub fn percent_bp(&self) -> u32 {
        match &self.phase {
            RolloutPhase::Ramping { percent_bp, .. } | RolloutPhase::Paused { percent_bp, .. } => {
                *percent_bp
            }
            RolloutPhase::Complete { config, .. } => config.max_bp,
            RolloutPhase::Idle
            | RolloutPhase::Proposed { .. }
            | RolloutPhase::Approved { .. }
            | RolloutPhase::EmergencyStopped => 0,
        }
    }

    /// The approved config, once there is one.
    pub fn config(&self) -> Option<&RolloutConfig> {
        match &self.phase {
            RolloutPhase::Approved { config, .. }
            | RolloutPhase::Ramping { config, .. }
            | RolloutPhase::Paused { config, .. }
            | RolloutPhase::Complete { config, .. } => Some(config),
            RolloutPhase::Idle | RolloutPhase::Proposed { .. } | RolloutPhase::EmergencyStopped => {
                None
            }
        }
    }

    /// The proposal in flight, if any.
    pub fn proposal(&self) -> Option<&ProposalRef> {
        match &self.phase {
            RolloutPhase::Proposed { proposal }
            | RolloutPhase::Approved { proposal, .. }
            | RolloutPhase::Ramping { proposal, .. }
            | RolloutPhase::Paused { proposal, .. }
            | RolloutPhase::Complete { proposal, .. } => Some(proposal),
            RolloutPhase::Idle | RolloutPhase::EmergencyStopped => None,
        }
    }
}

/// An input to the rollout machine.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum RolloutEvent {
    /// A proposal arrived.
    Propose {
        /// The proposal.
        proposal: ProposalRef,
    },
    /// The proposal was approved, with the digest the approver saw.
    Approve {
        /// Which proposal.
        proposal_id: String,
        /// The digest the approver saw; must equal the proposal's.
        digest: Digest,
        /// The ramp.
        config: RolloutConfig,
    },
    /// The proposal was rejected.
    Reject {
        /// Which proposal.
        proposal_id: String,
    },
    /// Time passed: recompute the ramp.
    Step {
        /// Now, µs.
        now_us: u64,
    },
    /// Hold the share still.
    Pause,
    /// Continue after a pause, or unfreeze after an emergency stop.
    Resume {
        /// Now, µs.
        now_us: u64,
    },
    /// Back to the safe baseline, at once, from anywhere.
    EmergencyStop,
    /// A new variant catalog.
    CatalogUpdate {
        /// Its version; must be newer than the current one.
        version: u64,
    },
}

/// An instruction to the rollout shell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RolloutEffect {
    /// Send the Approval (with its digest and rollout config) downstream.
    SendApproval {
        /// The proposal.
        proposal_id: String,
        /// Its digest.
        digest: Digest,
        /// The ramp.
        config: RolloutConfig,
    },
    /// Tell the proposer its proposal was rejected.
    SendRejection {
        /// The proposal.
        proposal_id: String,
    },
    /// The new variant's share changed.
    SetPercent {
        /// The share, bp.
        percent_bp: u32,
    },
    /// The ramp reached its cap.
    Completed {
        /// The proposal.
        proposal_id: String,
    },
    /// Revert every data plane to the safe baseline and freeze adaptation.
    RevertToBaseline,
    /// Fetch and load catalog `version`.
    LoadCatalog {
        /// The version.
        version: u64,
    },
}

/// Why the rollout machine refused an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RolloutRejection {
    /// The approval's digest differs from the proposal's (the TOCTOU guard of seed 004).
    #[error("approval digest {got:?} does not match the proposal's {expected:?}")]
    DigestMismatch {
        /// The proposal's digest.
        expected: Digest,
        /// The approval's.
        got: Digest,
    },
    /// The event names a proposal other than the one in flight.
    #[error("no proposal {0:?} in flight")]
    UnknownProposal(String),
    /// The rollout config is not `initial <= max <= 100 %`.
    #[error("invalid rollout config {0:?}")]
    InvalidConfig(RolloutConfig),
    /// A percentage is NaN, infinite, negative or above 100.
    #[error("a percentage must be within 0..=100")]
    InvalidPercent,
    /// A catalog version not newer than the current one.
    #[error("catalog version {got} is not newer than {current}")]
    StaleCatalog {
        /// The current version.
        current: u64,
        /// The refused one.
        got: u64,
    },
    /// Adaptation is frozen by an emergency stop; resume first.
    #[error("adaptation is stopped")]
    Stopped,
    /// The event does not apply in the current phase.
    #[error("{event} is not allowed while {phase}")]
    NotAllowed {
        /// The event kind.
        event: &'static str,
        /// The phase kind.
        phase: &'static str,
    },
}

/// The rollout machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rollout;

type RolloutStep = Step<RolloutState, RolloutEffect>;

fn with_phase(
    state: &RolloutState,
    phase: RolloutPhase,
    effects: Vec<RolloutEffect>,
) -> RolloutStep {
    Step {
        state: RolloutState {
            catalog_version: state.catalog_version,
            phase,
        },
        effects,
    }
}

/// The phase after ramping to `percent_bp`, and its effects (none when nothing changed).
fn ramp_to(
    proposal: &ProposalRef,
    config: RolloutConfig,
    percent_bp: u32,
    base_bp: u32,
    origin_us: u64,
    previous_bp: Option<u32>,
) -> (RolloutPhase, Vec<RolloutEffect>) {
    let mut effects = Vec::new();
    if previous_bp != Some(percent_bp) {
        effects.push(RolloutEffect::SetPercent { percent_bp });
    }
    if percent_bp >= config.max_bp {
        effects.push(RolloutEffect::Completed {
            proposal_id: proposal.id.clone(),
        });
        return (
            RolloutPhase::Complete {
                proposal: proposal.clone(),
                config,
            },
            effects,
        );
    }
    (
        RolloutPhase::Ramping {
            proposal: proposal.clone(),
            config,
            percent_bp,
            base_bp,
            origin_us,
        },
        effects,
    )
}

impl Rollout {
    fn approve(
        state: &RolloutState,
        proposal_id: &str,
        digest: &Digest,
        config: RolloutConfig,
    ) -> Result<RolloutStep, RolloutRejection> {
        let RolloutPhase::Proposed { proposal } = &state.phase else {
            return Err(not_allowed(state, "approve"));
        };
        if proposal.id != proposal_id {
            return Err(RolloutRejection::UnknownProposal(proposal_id.to_owned()));
        }
        if proposal.digest != *digest {
            return Err(RolloutRejection::DigestMismatch {
                expected: proposal.digest.clone(),
                got: digest.clone(),
            });
        }
        config.validate()?;
        Ok(with_phase(
            state,
            RolloutPhase::Approved {
                proposal: proposal.clone(),
                config,
            },
            vec![RolloutEffect::SendApproval {
                proposal_id: proposal.id.clone(),
                digest: digest.clone(),
                config,
            }],
        ))
    }

    fn step_time(state: &RolloutState, now_us: u64) -> Result<RolloutStep, RolloutRejection> {
        let (phase, effects) = match &state.phase {
            RolloutPhase::Approved { proposal, config } => ramp_to(
                proposal,
                *config,
                config.initial_bp,
                config.initial_bp,
                now_us,
                None,
            ),
            RolloutPhase::Ramping {
                proposal,
                config,
                percent_bp,
                base_bp,
                origin_us,
            } => {
                let reached = config
                    .percent_after(*base_bp, now_us.saturating_sub(*origin_us))
                    .max(*percent_bp);
                ramp_to(
                    proposal,
                    *config,
                    reached,
                    *base_bp,
                    *origin_us,
                    Some(*percent_bp),
                )
            }
            _ => return Err(not_allowed(state, "step")),
        };
        Ok(with_phase(state, phase, effects))
    }

    fn pause(state: &RolloutState) -> Result<RolloutStep, RolloutRejection> {
        let phase = match &state.phase {
            RolloutPhase::Approved { proposal, config } => RolloutPhase::Paused {
                proposal: proposal.clone(),
                config: *config,
                percent_bp: 0,
                started: false,
            },
            RolloutPhase::Ramping {
                proposal,
                config,
                percent_bp,
                ..
            } => RolloutPhase::Paused {
                proposal: proposal.clone(),
                config: *config,
                percent_bp: *percent_bp,
                started: true,
            },
            _ => return Err(not_allowed(state, "pause")),
        };
        Ok(with_phase(state, phase, Vec::new()))
    }

    fn resume(state: &RolloutState, now_us: u64) -> Result<RolloutStep, RolloutRejection> {
        let phase = match &state.phase {
            RolloutPhase::Paused {
                proposal,
                config,
                started: false,
                ..
            } => RolloutPhase::Approved {
                proposal: proposal.clone(),
                config: *config,
            },
            RolloutPhase::Paused {
                proposal,
                config,
                percent_bp,
                started: true,
            } => RolloutPhase::Ramping {
                proposal: proposal.clone(),
                config: *config,
                percent_bp: *percent_bp,
                base_bp: *percent_bp,
                origin_us: now_us,
            },
            RolloutPhase::EmergencyStopped => RolloutPhase::Idle,
            _ => return Err(not_allowed(state, "resume")),
        };
        Ok(with_phase(state, phase, Vec::new()))
    }
}

fn not_allowed(state: &RolloutState, event: &'static str) -> RolloutRejection {
    RolloutRejection::NotAllowed {
        event,
        phase: Rollout::state_kind(state),
    }
}

const STOP: &[&str] = &["revert_to_baseline", "set_percent"];
const CATALOG: &[&str] = &["load_catalog"];
const RAMP: &[&str] = &["set_percent"];
const FINISH: &[&str] = &["set_percent", "completed"];
const NEWER: &str = "version newer than the current one";

const TRANSITIONS: &[Transition] = &[
    row("idle", "propose", "proposed", "", &[]),
    row("complete", "propose", "proposed", "", &[]),
    row(
        "proposed",
        "approve",
        "approved",
        "same proposal id and digest; valid config",
        &["send_approval"],
    ),
    row(
        "proposed",
        "reject",
        "idle",
        "same proposal id",
        &["send_rejection"],
    ),
    row("approved", "step", "ramping", "initial below max", RAMP),
    row("approved", "step", "complete", "initial equals max", FINISH),
    row("ramping", "step", "ramping", "still below max", RAMP),
    row(
        "ramping",
        "step",
        "complete",
        "the ramp reached max",
        FINISH,
    ),
    row("approved", "pause", "paused", "", &[]),
    row("ramping", "pause", "paused", "", &[]),
    row(
        "paused",
        "resume",
        "approved",
        "paused before the ramp started",
        &[],
    ),
    row("paused", "resume", "ramping", "paused while ramping", &[]),
    row("emergency_stopped", "resume", "idle", "", &[]),
    row("idle", "emergency_stop", "emergency_stopped", "", STOP),
    row("proposed", "emergency_stop", "emergency_stopped", "", STOP),
    row("approved", "emergency_stop", "emergency_stopped", "", STOP),
    row("ramping", "emergency_stop", "emergency_stopped", "", STOP),
    row("paused", "emergency_stop", "emergency_stopped", "", STOP),
    row("complete", "emergency_stop", "emergency_stopped", "", STOP),
    row(
        "emergency_stopped",
        "emergency_stop",
        "emergency_stopped",
        "",
        STOP,
    ),
    row("idle", "catalog_update", "idle", NEWER, CATALOG),
    row("proposed", "catalog_update", "proposed", NEWER, CATALOG),
    row("approved", "catalog_update", "approved", NEWER, CATALOG),
    row("ramping", "catalog_update", "ramping", NEWER, CATALOG),
    row("paused", "catalog_update", "paused", NEWER, CATALOG),
    row("complete", "catalog_update", "complete", NEWER, CATALOG),
    row(
        "emergency_stopped",
        "catalog_update",
        "emergency_stopped",
        NEWER,
        CATALOG,
    ),
];

/// Invariant names.
pub mod invariant {
    /// The share never exceeds the approved cap (nor 100 %).
    pub const WITHIN_MAX: &str = "percent-within-max";
    /// The share never rises while paused or after an emergency stop.
    pub const NO_RISE_WHEN_HELD: &str = "no-rise-while-paused-or-stopped";
    /// An approval is accepted only with the proposal's digest.
    pub const DIGEST_MATCHES: &str = "approval-digest-matches";
    /// An emergency stop is accepted from every state and ends at the baseline.
    pub const STOP_REACHES_BASELINE: &str = "emergency-stop-reaches-baseline";
    /// The catalog version never goes back.
    pub const CATALOG_MONOTONIC: &str = "catalog-version-monotonic";
}

impl Machine for Rollout {
    const NAME: &'static str = "rollout";
    type State = RolloutState;
    type Event = RolloutEvent;
    type Effect = RolloutEffect;
    type Rejection = RolloutRejection;

    fn step(
        &self,
        state: &RolloutState,
        event: &RolloutEvent,
    ) -> Result<RolloutStep, RolloutRejection> {
        match event {
            RolloutEvent::Propose { proposal } => match &state.phase {
                RolloutPhase::Idle | RolloutPhase::Complete { .. } => Ok(with_phase(
                    state,
                    RolloutPhase::Proposed {
                        proposal: proposal.clone(),
                    },
                    Vec::new(),
                )),
                RolloutPhase::EmergencyStopped => Err(RolloutRejection::Stopped),
                _ => Err(not_allowed(state, "propose")),
            },
            RolloutEvent::Approve {
                proposal_id,
                digest,
                config,
            } => Self::approve(state, proposal_id, digest, *config),
            RolloutEvent::Reject { proposal_id } => match &state.phase {
                RolloutPhase::Proposed { proposal } if proposal.id == *proposal_id => {
                    Ok(with_phase(
                        state,
                        RolloutPhase::Idle,
                        vec![RolloutEffect::SendRejection {
                            proposal_id: proposal_id.clone(),
                        }],
                    ))
                }
                RolloutPhase::Proposed { .. } => {
                    Err(RolloutRejection::UnknownProposal(proposal_id.clone()))
                }
                _ => Err(not_allowed(state, "reject")),
            },
            RolloutEvent::Step { now_us } => Self::step_time(state, *now_us),
            RolloutEvent::Pause => Self::pause(state),
            RolloutEvent::Resume { now_us } => Self::resume(state, *now_us),
            RolloutEvent::EmergencyStop => Ok(with_phase(
                state,
                RolloutPhase::EmergencyStopped,
                vec![
                    RolloutEffect::RevertToBaseline,
                    RolloutEffect::SetPercent { percent_bp: 0 },
                ],
            )),
            RolloutEvent::CatalogUpdate { version } => {
                if *version <= state.catalog_version {
                    return Err(RolloutRejection::StaleCatalog {
                        current: state.catalog_version,
                        got: *version,
                    });
                }
                Ok(Step {
                    state: RolloutState {
                        catalog_version: *version,
                        phase: state.phase.clone(),
                    },
                    effects: vec![RolloutEffect::LoadCatalog { version: *version }],
                })
            }
        }
    }

    fn state_kind(state: &RolloutState) -> &'static str {
        match state.phase {
            RolloutPhase::Idle => "idle",
            RolloutPhase::Proposed { .. } => "proposed",
            RolloutPhase::Approved { .. } => "approved",
            RolloutPhase::Ramping { .. } => "ramping",
            RolloutPhase::Paused { .. } => "paused",
            RolloutPhase::Complete { .. } => "complete",
            RolloutPhase::EmergencyStopped => "emergency_stopped",
        }
    }

    fn event_kind(event: &RolloutEvent) -> &'static str {
        match event {
            RolloutEvent::Propose { .. } => "propose",
            RolloutEvent::Approve { .. } => "approve",
            RolloutEvent::Reject { .. } => "reject",
            RolloutEvent::Step { .. } => "step",
            RolloutEvent::Pause => "pause",
            RolloutEvent::Resume { .. } => "resume",
            RolloutEvent::EmergencyStop => "emergency_stop",
            RolloutEvent::CatalogUpdate { .. } => "catalog_update",
        }
    }

    fn effect_kind(effect: &RolloutEffect) -> &'static str {
        match effect {
            RolloutEffect::SendApproval { .. } => "send_approval",
            RolloutEffect::SendRejection { .. } => "send_rejection",
            RolloutEffect::SetPercent { .. } => "set_percent",
            RolloutEffect::Completed { .. } => "completed",
            RolloutEffect::RevertToBaseline => "revert_to_baseline",
            RolloutEffect::LoadCatalog { .. } => "load_catalog",
        }
    }

    fn state_kinds() -> &'static [&'static str] {
        &[
            "idle",
            "proposed",
            "approved",
            "ramping",
            "paused",
            "complete",
            "emergency_stopped",
        ]
    }

    fn event_kinds() -> &'static [&'static str] {
        &[
            "propose",
            "approve",
            "reject",
            "step",
            "pause",
            "resume",
            "emergency_stop",
            "catalog_update",
        ]
    }

    fn transitions() -> &'static [Transition] {
        TRANSITIONS
    }

    fn invariants() -> &'static [(&'static str, &'static str)] {
        &[
            (
                invariant::WITHIN_MAX,
                "the share never exceeds the approved max_percent, nor 100 %",
            ),
            (
                invariant::NO_RISE_WHEN_HELD,
                "the share never rises while paused or after an emergency stop",
            ),
            (
                invariant::DIGEST_MATCHES,
                "an approval is accepted only when its digest equals the proposal's",
            ),
            (
                invariant::STOP_REACHES_BASELINE,
                "an emergency stop is accepted in every state and ends at the baseline (0 %)",
            ),
            (
                invariant::CATALOG_MONOTONIC,
                "the catalog version never goes back",
            ),
        ]
    }

    fn check_invariants(&self, state: &RolloutState) -> Result<(), InvariantViolation> {
        let percent = state.percent_bp();
        let cap = state.config().map_or(FULL_BP, |c| c.max_bp.min(FULL_BP));
        if percent > cap {
            return Err(InvariantViolation {
                name: invariant::WITHIN_MAX,
                detail: format!("share {percent} bp above the cap {cap} bp"),
            });
        }
        match self.step(state, &RolloutEvent::EmergencyStop) {
            Ok(stopped) if stopped.state.percent_bp() == 0 => Ok(()),
            other => Err(InvariantViolation {
                name: invariant::STOP_REACHES_BASELINE,
                detail: format!(
                    "emergency stop from {} gave {other:?}",
                    Self::state_kind(state)
                ),
            }),
        }
    }

    fn check_step(
        &self,
        before: &RolloutState,
        event: &RolloutEvent,
        after: &RolloutStep,
    ) -> Result<(), InvariantViolation> {
        let held = matches!(
            before.phase,
            RolloutPhase::Paused { .. } | RolloutPhase::EmergencyStopped
        );
        if held && after.state.percent_bp() > before.percent_bp() {
            return Err(InvariantViolation {
                name: invariant::NO_RISE_WHEN_HELD,
                detail: format!(
                    "{} raised the share from {} to {} bp while {}",
                    Self::event_kind(event),
                    before.percent_bp(),
                    after.state.percent_bp(),
                    Self::state_kind(before)
                ),
            });
        }
        if let RolloutEvent::Approve { digest, .. } = event {
            let expected = before.proposal().map(|p| &p.digest);
            if expected != Some(digest) {
                return Err(InvariantViolation {
                    name: invariant::DIGEST_MATCHES,
                    detail: format!("accepted digest {digest:?}, proposal had {expected:?}"),
                });
            }
        }
        if after.state.catalog_version < before.catalog_version {
            return Err(InvariantViolation {
                name: invariant::CATALOG_MONOTONIC,
                detail: format!(
                    "catalog went from {} to {}",
                    before.catalog_version, after.state.catalog_version
                ),
            });
        }
        Ok(())
    }
}

/// Why the tracker could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// The rollout machine refused the approval.
    #[error("rollout refused: {0}")]
    Refused(#[from] RolloutRejection),
}

/// The data plane's view of an approved rollout (seed 004's `RolloutTracker`), driven by the
/// [`Rollout`] machine. Randomness comes from a seeded `ChaCha8Rng` and time from the caller,
/// so a seed and a sequence of calls replay exactly.
#[derive(Clone, Debug)]
pub struct RolloutTracker {
    machine: Rollout,
    state: RolloutState,
    now_us: u64,
    rng: ChaCha8Rng,
}

impl RolloutTracker {
    /// Starts tracking an approved rollout of `proposal` at `now_us`: the share is the config's
    /// `initial_bp` at once. `seed` seeds the coin flips.
    pub fn new(
        proposal: ProposalRef,
        config: RolloutConfig,
        now_us: u64,
        seed: u64,
    ) -> Result<Self, TrackerError> {
        Ok(Self {
            machine: Rollout,
            state: RolloutState::approved(proposal, config, now_us)?,
            now_us,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Flips a coin that comes up `true` with the current share's probability.
    pub fn should_apply(&mut self) -> bool {
        self.rng.gen_range(0..FULL_BP) < self.state.percent_bp()
    }

    /// Advances the ramp by one minute (one increment), as the seed's `step()`.
    pub fn step(&mut self) {
        self.advance_to(self.now_us.saturating_add(MINUTE_US));
    }

    /// Advances the ramp to `now_us`. Time before the last call is ignored.
    pub fn advance_to(&mut self, now_us: u64) {
        self.now_us = self.now_us.max(now_us);
        self.apply(&RolloutEvent::Step {
            now_us: self.now_us,
        });
    }

    /// Holds the share still (`PauseAdaptation`).
    pub fn pause(&mut self) {
        self.apply(&RolloutEvent::Pause);
    }

    /// Continues a paused ramp from now, or unfreezes after an emergency stop.
    pub fn resume(&mut self) {
        self.apply(&RolloutEvent::Resume {
            now_us: self.now_us,
        });
    }

    /// Back to the baseline at once; `should_apply` is `false` until a new rollout.
    pub fn emergency_stop(&mut self) {
        self.apply(&RolloutEvent::EmergencyStop);
    }

    /// The current share, bp.
    pub fn percent_bp(&self) -> u32 {
        self.state.percent_bp()
    }

    /// The machine state behind the tracker.
    pub fn state(&self) -> &RolloutState {
        &self.state
    }

    /// Steps the machine; an event the phase does not allow (for example a step after
    /// completion) leaves the tracker as it is, by the machine's own rules.
    fn apply(&mut self, event: &RolloutEvent) {
        if let Ok(step) = self.machine.step(&self.state, event) {
            self.state = step.state;
        }
    }
}

/// The small universe exploration draws from: two proposals, two digests, one ramping config
/// (5 % + 10 %/min up to 50 %), one that starts at its cap, one invalid config.
pub mod explore {
    use super::{
        Digest, MINUTE_US, ProposalRef, Rollout, RolloutConfig, RolloutEvent, RolloutPhase,
        RolloutState,
    };
    use crate::machine::Explore;

    /// The config exploration ramps with: 5 % + 10 %/min, capped at 50 %.
    pub const RAMP: RolloutConfig = RolloutConfig {
        initial_bp: 500,
        increment_bp_per_minute: 1_000,
        max_bp: 5_000,
    };
    /// A config that starts at its cap.
    pub const AT_CAP: RolloutConfig = RolloutConfig {
        initial_bp: 2_000,
        increment_bp_per_minute: 0,
        max_bp: 2_000,
    };
    /// A config with `initial > max`.
    pub const INVALID: RolloutConfig = RolloutConfig {
        initial_bp: 6_000,
        increment_bp_per_minute: 0,
        max_bp: 5_000,
    };

    /// Proposal `p1` with digest `d1`.
    pub fn proposal() -> ProposalRef {
        ProposalRef {
            id: "p1".to_owned(),
            digest: Digest("d1".to_owned()),
            variant: Some(42),
        }
    }

    /// Every event worth trying in `state`.
    pub fn events(state: &RolloutState) -> Vec<RolloutEvent> {
        let now_us = match state.phase {
            RolloutPhase::Ramping { origin_us, .. } => origin_us,
            _ => 0,
        };
        let approve = |id: &str, digest: &str, config| RolloutEvent::Approve {
            proposal_id: id.to_owned(),
            digest: Digest(digest.to_owned()),
            config,
        };
        vec![
            RolloutEvent::Propose {
                proposal: proposal(),
            },
            approve("p1", "d1", RAMP),
            approve("p1", "d1", AT_CAP),
            approve("p1", "d2", RAMP),
            approve("p2", "d1", RAMP),
            approve("p1", "d1", INVALID),
            RolloutEvent::Reject {
                proposal_id: "p1".to_owned(),
            },
            RolloutEvent::Reject {
                proposal_id: "p2".to_owned(),
            },
            RolloutEvent::Step {
                now_us: now_us + MINUTE_US,
            },
            RolloutEvent::Step {
                now_us: now_us + 10 * MINUTE_US,
            },
            RolloutEvent::Pause,
            RolloutEvent::Resume { now_us },
            RolloutEvent::EmergencyStop,
            RolloutEvent::CatalogUpdate {
                version: state.catalog_version + 1,
            },
            RolloutEvent::CatalogUpdate {
                version: state.catalog_version,
            },
        ]
    }

    impl Explore for Rollout {
        fn initial(&self) -> RolloutState {
            RolloutState::default()
        }

        fn alphabet(&self, state: &RolloutState) -> Vec<RolloutEvent> {
            events(state)
        }
    }
}

#[cfg(test)]
mod tests;
