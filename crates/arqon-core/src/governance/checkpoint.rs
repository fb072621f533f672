//! A control plane's state as stored beside its audit chain, so that a new writer (after a
//! failover or a restart) resumes with the pending proposals, the rollouts in flight, the pause and
//! the catalog version instead of an empty control plane (`specs/lease.md`, "State on failover").
//!
//! Pure: the Brain stores and loads the JSON; [`ControlPlane::restore`] refuses a checkpoint that is
//! for another tenant, does not decode, or breaks an invariant, so a bad checkpoint fails closed.

use std::collections::BTreeMap;

use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1;
use prost::Message as _;

use super::{ControlPlane, PendingProposal, Rules};
use crate::rollout::RolloutState;

/// A control plane's state at one point of its audit chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The tenant.
    pub tenant: String,
    /// The audit record this state follows (its `seq`; 0 before the first record).
    pub seq: u64,
    /// Whether adaptation is paused.
    pub paused: bool,
    /// The catalog version.
    pub catalog_version: u64,
    /// Proposals waiting for a decision, oldest first.
    pub pending: Vec<StoredProposal>,
    /// Rollouts in flight, by proposal id.
    pub in_flight: BTreeMap<String, RolloutState>,
}

/// A pending proposal as stored: the Protobuf encoding of the proposal, in hex.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredProposal {
    /// `v1::Proposal`, encoded, lower-case hex.
    pub proposal: String,
    /// Its canonical digest.
    pub digest: String,
    /// Who proposed it.
    pub from: String,
}

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// The checkpoint is not JSON of this shape.
    #[error("checkpoint does not parse: {0}")]
    Malformed(String),
    /// It belongs to another tenant.
    #[error("checkpoint is for tenant {found}, not {expected}")]
    WrongTenant {
        /// The tenant asked for.
        expected: String,
        /// The tenant in the checkpoint.
        found: String,
    },
    /// A stored proposal does not decode.
    #[error("checkpoint proposal {index}: {reason}")]
    Proposal {
        /// Its position in `pending`.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The restored control plane breaks an invariant.
    #[error("checkpoint breaks invariant {name}: {detail}")]
    Invariant {
        /// The invariant.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl Checkpoint {
    /// The checkpoint as one compact JSON line.
    pub fn to_json(&self) -> String {
        // A struct of strings, integers, booleans and maps of them always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stored checkpoint.
    pub fn from_json(text: &str) -> Result<Self, CheckpointError> {
        serde_json::from_str(text).map_err(|e| CheckpointError::Malformed(e.to_string()))
    }
}

impl ControlPlane {
    /// This control plane's state, following audit record `seq`.
    pub fn checkpoint(&self, seq: u64) -> Checkpoint {
        Checkpoint {
            tenant: self.tenant.as_str().to_owned(),
            seq,
            paused: self.paused,
            catalog_version: self.catalog_version,
            pending: self
                .pending
                .iter()
                .map(|p| StoredProposal {
                    proposal: hex::encode(p.proposal.encode_to_vec()),
                    digest: p.digest.clone(),
                    from: p.from.as_str().to_owned(),
                })
                .collect(),
            in_flight: self.in_flight.clone(),
        }
    }

    /// The control plane of `tenant`, deciding with `rules`, in the state `checkpoint` holds.
    pub fn restore(
        tenant: TenantId,
        rules: Rules,
        checkpoint: &Checkpoint,
    ) -> Result<Self, CheckpointError> {
        if checkpoint.tenant != tenant.as_str() {
            return Err(CheckpointError::WrongTenant {
                expected: tenant.as_str().to_owned(),
                found: checkpoint.tenant.clone(),
            });
        }
        let pending = checkpoint
            .pending
            .iter()
            .enumerate()
            .map(|(index, stored)| {
                let fail = |reason: String| CheckpointError::Proposal { index, reason };
                let bytes = hex::decode(&stored.proposal).map_err(|e| fail(e.to_string()))?;
                let proposal =
                    v1::Proposal::decode(bytes.as_slice()).map_err(|e| fail(e.to_string()))?;
                let from = UserId::parse(&stored.from).map_err(|e| fail(e.to_string()))?;
                Ok(PendingProposal {
                    proposal,
                    digest: stored.digest.clone(),
                    from,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let control = Self {
            tenant,
            rules,
            paused: checkpoint.paused,
            catalog_version: checkpoint.catalog_version,
            pending,
            in_flight: checkpoint.in_flight.clone(),
        };
        control
            .check_invariants()
            .map_err(|v| CheckpointError::Invariant {
                name: v.name,
                detail: v.detail,
            })?;
        Ok(control)
    }
}

/// How a writer's control plane started (see [`ControlPlane::resume`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Resumed {
    /// No checkpoint: a fresh control plane (a new tenant, or a chain older than checkpoints).
    Fresh,
    /// From the checkpoint that follows audit record `seq`; `behind` records came after it (a
    /// writer that stopped between a record and its checkpoint: their decisions are not in the
    /// state).
    Checkpoint {
        /// The record the state follows.
        seq: u64,
        /// How many records of the chain are newer than the checkpoint.
        behind: u64,
    },
    /// The checkpoint was refused; the control plane starts paused, so nothing is rolled out
    /// until an operator looks (fail closed).
    Refused(CheckpointError),
}

impl ControlPlane {
    /// The control plane a new writer of `tenant` starts with, given the newest stored
    /// checkpoint (which may not have parsed) and the `seq` of the chain's last record: the
    /// checkpoint's state when it is valid and not ahead of the chain; a fresh control plane when
    /// there is none; a paused one when the checkpoint is refused or claims records the chain
    /// does not hold.
    pub fn resume(
        tenant: TenantId,
        rules: Rules,
        checkpoint: Option<Result<Checkpoint, CheckpointError>>,
        head_seq: u64,
    ) -> (Self, Resumed) {
        let refused = |tenant, rules, error| {
            let mut control = Self::new(tenant, rules);
            control.paused = true;
            (control, Resumed::Refused(error))
        };
        let checkpoint = match checkpoint {
            None => return (Self::new(tenant, rules), Resumed::Fresh),
            Some(Err(error)) => return refused(tenant, rules, error),
            Some(Ok(checkpoint)) => checkpoint,
        };
        if checkpoint.seq > head_seq {
            let error = CheckpointError::Invariant {
                name: "checkpoint-within-chain",
                detail: format!(
                    "checkpoint follows record {}, the chain ends at {head_seq}",
                    checkpoint.seq
                ),
            };
            return refused(tenant, rules, error);
        }
        match Self::restore(tenant.clone(), rules.clone(), &checkpoint) {
            Ok(control) => (
                control,
                Resumed::Checkpoint {
                    seq: checkpoint.seq,
                    behind: head_seq - checkpoint.seq,
                },
            ),
            Err(error) => refused(tenant, rules, error),
        }
    }
}
