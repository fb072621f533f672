//! The data plane's side of governance, sans-IO: remember what was proposed, check every
//! Approval's digest (refuse and alert on a mismatch, seed 004's TOCTOU guard), obey enforcement,
//! keep catalog versions monotonic. The Rust client drives it and executes its effects.

use std::collections::BTreeMap;

use arqon_proto::GovernanceCommand;
use arqon_proto::v1;
use arqon_proto::v1::enforce::Action;

use super::{proposal_digest, rollout_from_wire, verify_approval};
use crate::rollout::{Digest, FULL_BP, ProposalRef, RolloutConfig};

/// What the data plane must do after a downstream message.
#[derive(Clone, Debug, PartialEq)]
pub enum DataPlaneEffect {
    /// Start shifting traffic to the approved proposal (build a `RolloutTracker` from these).
    StartRollout {
        /// The approved proposal.
        proposal: ProposalRef,
        /// Its ramp (all at once when the approval carried none).
        config: RolloutConfig,
    },
    /// The control plane rejected one of our proposals.
    Rejected {
        /// The proposal id.
        proposal_id: String,
        /// Why.
        reason: String,
    },
    /// Send this alert upstream (a refused approval).
    SendAlert(v1::Alert),
    /// Force a variant.
    SetVariant(u64),
    /// Force parameters.
    SetParams(BTreeMap<String, f64>),
    /// Back to the safe baseline at once (stop every rollout).
    RevertToBaseline,
    /// Freeze adaptation: propose nothing, hold rollouts.
    PauseAdaptation,
    /// Unfreeze adaptation.
    ResumeAdaptation,
    /// Fetch and load a newer catalog.
    LoadCatalog {
        /// Its version.
        version: u64,
        /// Where to fetch it.
        source_uri: String,
    },
}

/// Why the data plane may not propose now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("adaptation is paused by the control plane")]
pub struct AdaptationPaused;

/// The data plane's governance state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataPlaneAgent {
    proposals: BTreeMap<String, v1::Proposal>,
    paused: bool,
    catalog_version: u64,
}

impl DataPlaneAgent {
    /// A data plane with nothing proposed, not paused, catalog version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether adaptation is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The newest catalog version loaded.
    pub fn catalog_version(&self) -> u64 {
        self.catalog_version
    }

    /// Records `proposal` before it is sent, so its approval can be checked; refused while paused.
    pub fn propose(&mut self, proposal: &v1::Proposal) -> Result<(), AdaptationPaused> {
        if self.paused {
            return Err(AdaptationPaused);
        }
        self.proposals.insert(proposal.id.clone(), proposal.clone());
        Ok(())
    }

    /// Handles one message from `gov.down` received at `now_us` (stamped on any alert).
    /// Approvals and rejections of proposals this data plane did not send are ignored.
    pub fn on_downstream(
        &mut self,
        message: &GovernanceCommand,
        now_us: u64,
    ) -> Vec<DataPlaneEffect> {
        match message {
            GovernanceCommand::Approval(approval) => self.on_approval(approval, now_us),
            GovernanceCommand::Rejection(r) => match self.proposals.remove(&r.proposal_id) {
                Some(_) => vec![DataPlaneEffect::Rejected {
                    proposal_id: r.proposal_id.clone(),
                    reason: r.reason.clone(),
                }],
                None => Vec::new(),
            },
            GovernanceCommand::Enforce(e) => self.on_enforce(e.action.as_ref()),
            GovernanceCommand::CatalogUpdate(c) if c.version > self.catalog_version => {
                self.catalog_version = c.version;
                vec![DataPlaneEffect::LoadCatalog {
                    version: c.version,
                    source_uri: c.source_uri.clone(),
                }]
            }
            _ => Vec::new(),
        }
    }

    fn on_approval(&mut self, approval: &v1::Approval, now_us: u64) -> Vec<DataPlaneEffect> {
        let Some(proposal) = self.proposals.get(&approval.proposal_id) else {
            return Vec::new();
        };
        let config = match approval.rollout.as_ref().map(rollout_from_wire).transpose() {
            Ok(config) => config.unwrap_or(RolloutConfig {
                initial_bp: FULL_BP,
                increment_bp_per_minute: 0,
                max_bp: FULL_BP,
            }),
            Err(e) => {
                return vec![alert(
                    now_us,
                    &approval.proposal_id,
                    &e.to_string(),
                    BTreeMap::new(),
                )];
            }
        };
        if let Err(mismatch) = verify_approval(proposal, approval) {
            let context = BTreeMap::from([
                ("expected_digest".to_owned(), mismatch.expected),
                ("approved_digest".to_owned(), mismatch.got),
            ]);
            return vec![alert(
                now_us,
                &approval.proposal_id,
                "approval digest mismatch",
                context,
            )];
        }
        if self.paused {
            return vec![alert(
                now_us,
                &approval.proposal_id,
                "approval while adaptation is paused",
                BTreeMap::new(),
            )];
        }
        let reference = ProposalRef {
            id: proposal.id.clone(),
            digest: Digest(proposal_digest(proposal)),
            variant: proposal.variant_id,
        };
        self.proposals.remove(&approval.proposal_id);
        vec![DataPlaneEffect::StartRollout {
            proposal: reference,
            config,
        }]
    }

    fn on_enforce(&mut self, action: Option<&Action>) -> Vec<DataPlaneEffect> {
        match action {
            Some(Action::SetVariant(v)) => vec![DataPlaneEffect::SetVariant(v.variant_id)],
            Some(Action::SetParams(p)) => vec![DataPlaneEffect::SetParams(
                p.params.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            )],
            Some(Action::EmergencyStop(_)) => {
                self.paused = true;
                self.proposals.clear();
                vec![
                    DataPlaneEffect::RevertToBaseline,
                    DataPlaneEffect::PauseAdaptation,
                ]
            }
            Some(Action::PauseAdaptation(_)) => {
                self.paused = true;
                vec![DataPlaneEffect::PauseAdaptation]
            }
            Some(Action::ResumeAdaptation(_)) => {
                self.paused = false;
                vec![DataPlaneEffect::ResumeAdaptation]
            }
            None => Vec::new(),
        }
    }
}

/// A critical alert about a refused approval (no payloads; digests and ids only).
fn alert(
    now_us: u64,
    proposal_id: &str,
    message: &str,
    mut context: BTreeMap<String, String>,
) -> DataPlaneEffect {
    context.insert("proposal_id".to_owned(), proposal_id.to_owned());
    DataPlaneEffect::SendAlert(v1::Alert {
        timestamp_us: now_us,
        severity: v1::AlertSeverity::Critical.into(),
        message: message.to_owned(),
        context: context.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(id: &str) -> v1::Proposal {
        v1::Proposal {
            id: id.into(),
            timestamp_us: 7,
            variant_id: Some(42),
            reason: "Latency regression detected".into(),
            confidence: 0.92,
            ..v1::Proposal::default()
        }
    }

    fn approval(p: &v1::Proposal) -> GovernanceCommand {
        GovernanceCommand::Approval(v1::Approval {
            proposal_id: p.id.clone(),
            proposal_digest: proposal_digest(p),
            rollout: Some(v1::RolloutConfig {
                initial_percent: 5.0,
                increment_per_minute: 10.0,
                max_percent: 50.0,
            }),
        })
    }

    fn enforce(action: Action) -> GovernanceCommand {
        GovernanceCommand::Enforce(v1::Enforce {
            action: Some(action),
            reason: String::new(),
        })
    }

    // AC-GOV-4
    #[test]
    fn matching_approval_starts_the_rollout_and_a_tampered_one_alerts() {
        let mut agent = DataPlaneAgent::new();
        let p = proposal("prop_001");
        agent.propose(&p).unwrap();
        let GovernanceCommand::Approval(mut tampered) = approval(&p) else {
            unreachable!()
        };
        tampered.proposal_digest = "0".repeat(64);
        let effects = agent.on_downstream(&GovernanceCommand::Approval(tampered), 9);
        let [DataPlaneEffect::SendAlert(alert)] = &effects[..] else {
            panic!("expected an alert, got {effects:?}");
        };
        assert_eq!(alert.severity(), v1::AlertSeverity::Critical);
        assert_eq!(alert.timestamp_us, 9);
        assert_eq!(alert.context["approved_digest"], "0".repeat(64));
        assert_eq!(alert.context["expected_digest"], proposal_digest(&p));

        let effects = agent.on_downstream(&approval(&p), 9);
        assert_eq!(
            effects,
            [DataPlaneEffect::StartRollout {
                proposal: ProposalRef {
                    id: "prop_001".into(),
                    digest: Digest(proposal_digest(&p)),
                    variant: Some(42),
                },
                config: RolloutConfig {
                    initial_bp: 500,
                    increment_bp_per_minute: 1_000,
                    max_bp: 5_000
                },
            }]
        );
        // Someone else's approval is not ours to apply.
        assert!(
            agent
                .on_downstream(&approval(&proposal("theirs")), 9)
                .is_empty()
        );
    }

    // AC-GOV-9
    #[test]
    fn emergency_stop_reverts_and_pauses_until_resumed() {
        let mut agent = DataPlaneAgent::new();
        let p = proposal("p1");
        agent.propose(&p).unwrap();
        let effects = agent.on_downstream(&enforce(Action::EmergencyStop(v1::EmergencyStop {})), 9);
        assert_eq!(
            effects,
            [
                DataPlaneEffect::RevertToBaseline,
                DataPlaneEffect::PauseAdaptation
            ]
        );
        assert!(agent.paused());
        assert_eq!(agent.propose(&proposal("p2")), Err(AdaptationPaused));
        // A late approval of a proposal made before the stop is not applied.
        assert!(agent.on_downstream(&approval(&p), 9).is_empty());
        let effects = agent.on_downstream(
            &enforce(Action::ResumeAdaptation(v1::ResumeAdaptation {})),
            9,
        );
        assert_eq!(effects, [DataPlaneEffect::ResumeAdaptation]);
        assert!(agent.propose(&proposal("p2")).is_ok());
    }

    // AC-GOV-10
    #[test]
    fn catalog_updates_only_move_forward() {
        let mut agent = DataPlaneAgent::new();
        let update = |version| {
            GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
                version,
                source_uri: "s3://c".into(),
            })
        };
        assert_eq!(agent.on_downstream(&update(2), 9).len(), 1);
        assert!(agent.on_downstream(&update(2), 9).is_empty());
        assert!(agent.on_downstream(&update(1), 9).is_empty());
        assert_eq!(agent.catalog_version(), 2);
    }

    #[test]
    fn rejection_of_our_proposal_is_reported_once() {
        let mut agent = DataPlaneAgent::new();
        agent.propose(&proposal("p1")).unwrap();
        let rejection = GovernanceCommand::Rejection(v1::Rejection {
            proposal_id: "p1".into(),
            reason: "low_confidence".into(),
        });
        assert_eq!(agent.on_downstream(&rejection, 9).len(), 1);
        assert!(agent.on_downstream(&rejection, 9).is_empty());
    }
}
