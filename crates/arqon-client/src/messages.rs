//! Typed governance messages (seed 004's `UpstreamMessage` / `DownstreamMessage`) and their
//! mapping to the `arqon.v1` bodies.

use std::collections::BTreeMap;

use arqon_core::rollout::{ProposalRef, RolloutConfig as CoreRolloutConfig};
use arqon_proto::GovernanceCommand;
use arqon_proto::v1;

/// A proposal (seed 004's `UpstreamMessage::Proposal` fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Proposal {
    /// Unique per data plane.
    pub id: String,
    /// When proposed, µs since the epoch (0: the client fills in now).
    pub timestamp_us: u64,
    /// The variant to switch to.
    pub variant_id: Option<u64>,
    /// Parameters to set.
    pub params: Option<BTreeMap<String, f64>>,
    /// Why.
    pub reason: String,
    /// 0.0 – 1.0.
    pub confidence: f64,
}

/// How serious an alert is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertSeverity {
    /// Informational.
    #[default]
    Info,
    /// Needs attention.
    Warning,
    /// Something failed.
    Error,
    /// Safety at stake.
    Critical,
}

/// Data plane → control plane.
#[derive(Clone, Debug, PartialEq)]
pub enum UpstreamMessage {
    /// A metrics digest.
    Telemetry {
        /// When measured, µs (0: now).
        timestamp_us: u64,
        /// The reporting node.
        node_id: String,
        /// Named metrics.
        metrics: BTreeMap<String, f64>,
    },
    /// A proposed change; remembered so the approval's digest can be checked.
    Proposal(Proposal),
    /// An alert.
    Alert {
        /// When raised, µs (0: now).
        timestamp_us: u64,
        /// How serious.
        severity: AlertSeverity,
        /// What happened.
        message: String,
        /// Extra context.
        context: BTreeMap<String, String>,
    },
}

impl From<Proposal> for UpstreamMessage {
    fn from(proposal: Proposal) -> Self {
        Self::Proposal(proposal)
    }
}

/// A ramp as the operator gave it, in percent (seed 004's `RolloutConfig`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutConfig {
    /// Start at this percentage.
    pub initial_percent: f64,
    /// Percentage points added per minute.
    pub increment_per_minute: f64,
    /// Never above this percentage.
    pub max_percent: f64,
}

/// A verified approval of one of this client's proposals: what `RolloutTracker::new` needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovedRollout {
    /// The proposal approved (id, digest, variant).
    pub proposal: ProposalRef,
    /// The ramp (all at once when the approval carried none).
    pub config: CoreRolloutConfig,
}

/// An override action.
#[derive(Clone, Debug, PartialEq)]
pub enum EnforcementAction {
    /// Force a variant.
    SetVariant(u64),
    /// Force parameters.
    SetParams(BTreeMap<String, f64>),
    /// Reset to the safe baseline (the client is now paused).
    EmergencyStop,
    /// Freeze Tier-2 changes.
    PauseAdaptation,
    /// Unfreeze.
    ResumeAdaptation,
}

/// Control plane → data plane, after the client's checks (`DataPlaneAgent`).
#[derive(Clone, Debug, PartialEq)]
pub enum DownstreamMessage {
    /// One of this client's proposals was approved and its digest verified.
    Approval {
        /// The proposal id.
        proposal_id: String,
        /// The digest, equal to the one of the proposal sent.
        proposal_digest: String,
        /// The verified ramp; build a `RolloutTracker` from it.
        rollout: ApprovedRollout,
    },
    /// An approval that did not match what this client proposed (digest or id), or came while
    /// paused: refused, and an Alert was sent upstream.
    ApprovalRefused {
        /// The proposal id it named.
        proposal_id: String,
        /// Why (the alert's message).
        reason: String,
    },
    /// One of this client's proposals was rejected.
    Rejection {
        /// The proposal id.
        proposal_id: String,
        /// Why.
        reason: String,
    },
    /// An override.
    Enforce {
        /// What to do.
        action: EnforcementAction,
        /// Why.
        reason: String,
    },
    /// A newer catalog (older versions are dropped).
    CatalogUpdate {
        /// Its version.
        version: u64,
        /// Where to fetch it.
        source_uri: String,
    },
    /// The control plane refused something this client sent.
    Refused {
        /// The error code.
        code: v1::ErrorCode,
        /// Why.
        message: String,
    },
}

fn severity(severity: AlertSeverity) -> v1::AlertSeverity {
    match severity {
        AlertSeverity::Info => v1::AlertSeverity::Info,
        AlertSeverity::Warning => v1::AlertSeverity::Warning,
        AlertSeverity::Error => v1::AlertSeverity::Error,
        AlertSeverity::Critical => v1::AlertSeverity::Critical,
    }
}

impl UpstreamMessage {
    /// The wire body, with a zero timestamp replaced by `now_us`.
    pub fn into_command(self, now_us: u64) -> GovernanceCommand {
        let at = |t: u64| if t == 0 { now_us } else { t };
        match self {
            Self::Telemetry {
                timestamp_us,
                node_id,
                metrics,
            } => GovernanceCommand::Telemetry(v1::Telemetry {
                timestamp_us: at(timestamp_us),
                node_id,
                metrics,
            }),
            Self::Proposal(p) => GovernanceCommand::Proposal(v1::Proposal {
                id: p.id,
                timestamp_us: at(p.timestamp_us),
                variant_id: p.variant_id,
                params: p.params.unwrap_or_default(),
                reason: p.reason,
                confidence: p.confidence,
            }),
            Self::Alert {
                timestamp_us,
                severity: level,
                message,
                context,
            } => GovernanceCommand::Alert(v1::Alert {
                timestamp_us: at(timestamp_us),
                severity: severity(level) as i32,
                message,
                context,
            }),
        }
    }
}

/// The typed form of an Enforce action, if it has one.
pub(crate) fn enforcement(action: Option<&v1::enforce::Action>) -> Option<EnforcementAction> {
    use v1::enforce::Action;
    Some(match action? {
        Action::SetVariant(v) => EnforcementAction::SetVariant(v.variant_id),
        Action::SetParams(p) => EnforcementAction::SetParams(p.params.clone()),
        Action::EmergencyStop(_) => EnforcementAction::EmergencyStop,
        Action::PauseAdaptation(_) => EnforcementAction::PauseAdaptation,
        Action::ResumeAdaptation(_) => EnforcementAction::ResumeAdaptation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposal_maps_to_its_wire_body_with_the_time_filled_in() {
        let message = UpstreamMessage::Proposal(Proposal {
            id: "p1".into(),
            variant_id: Some(42),
            reason: "latency".into(),
            confidence: 0.92,
            ..Default::default()
        });
        let GovernanceCommand::Proposal(wire) = message.into_command(7) else {
            unreachable!("a proposal")
        };
        assert_eq!(wire.id, "p1");
        assert_eq!(wire.timestamp_us, 7);
        assert_eq!(wire.variant_id, Some(42));
        assert!(wire.params.is_empty());
    }

    #[test]
    fn every_enforcement_action_has_a_typed_form() {
        use v1::enforce::Action;
        assert_eq!(
            enforcement(Some(&Action::EmergencyStop(v1::EmergencyStop {}))),
            Some(EnforcementAction::EmergencyStop)
        );
        assert_eq!(
            enforcement(Some(&Action::SetVariant(v1::SetVariant { variant_id: 3 }))),
            Some(EnforcementAction::SetVariant(3))
        );
        assert_eq!(enforcement(None), None);
    }
}
