//! Proposals on the wire: the canonical proposal digest, the client-side check that an approval
//! approves exactly the proposal sent (seed 004's TOCTOU guard), and rollout configs between the
//! wire's percent and the Rollout machine's basis points.

use arqon_proto::v1;
use sha2::{Digest as _, Sha256};

use crate::audit::{put_len, put_str};
use crate::rollout::{RolloutConfig, RolloutRejection};

/// Domain-separation prefix of the proposal digest.
const PROPOSAL_DOMAIN: &[u8] = b"arqon.proposal.v1\0";

/// The canonical digest of a proposal: lowercase hex SHA-256 of the byte form in
/// `specs/governance.md` (independent of Protobuf encoding and map order).
pub fn proposal_digest(proposal: &v1::Proposal) -> String {
    let mut h = Sha256::new();
    h.update(PROPOSAL_DOMAIN);
    put_str(&mut h, &proposal.id);
    h.update(proposal.timestamp_us.to_be_bytes());
    match proposal.variant_id {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            h.update(v.to_be_bytes());
        }
    }
    // Sorted by key bytes whatever map type the generated code uses.
    let mut params: Vec<(&String, &f64)> = proposal.params.iter().collect();
    params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    put_len(&mut h, params.len());
    for (key, value) in params {
        put_str(&mut h, key);
        h.update(value.to_bits().to_be_bytes());
    }
    put_str(&mut h, &proposal.reason);
    h.update(proposal.confidence.to_bits().to_be_bytes());
    hex::encode(h.finalize())
}

/// An approval that is not for the proposal the data plane sent (seed 004's TOCTOU guard).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "approval for {approved_id:?} with digest {got} does not match proposal {proposal_id:?} ({expected})"
)]
pub struct DigestMismatch {
    /// The data plane's proposal id.
    pub proposal_id: String,
    /// The id the approval names.
    pub approved_id: String,
    /// The digest of the data plane's proposal.
    pub expected: String,
    /// The digest the approval carries.
    pub got: String,
}

/// Client side: checks that `approval` approves exactly `proposal`.
pub fn verify_approval(
    proposal: &v1::Proposal,
    approval: &v1::Approval,
) -> Result<(), DigestMismatch> {
    let expected = proposal_digest(proposal);
    if approval.proposal_id == proposal.id && approval.proposal_digest == expected {
        Ok(())
    } else {
        Err(DigestMismatch {
            proposal_id: proposal.id.clone(),
            approved_id: approval.proposal_id.clone(),
            expected,
            got: approval.proposal_digest.clone(),
        })
    }
}

/// Converts a wire rollout config (percent) to the Rollout machine's (basis points).
pub fn rollout_from_wire(config: &v1::RolloutConfig) -> Result<RolloutConfig, RolloutRejection> {
    RolloutConfig::from_percent(
        config.initial_percent,
        config.increment_per_minute,
        config.max_percent,
    )
}

/// Converts the Rollout machine's config (basis points) to the wire's (percent).
pub fn rollout_to_wire(config: &RolloutConfig) -> v1::RolloutConfig {
    let percent = |bp: u32| f64::from(bp) / 100.0;
    v1::RolloutConfig {
        initial_percent: percent(config.initial_bp),
        increment_per_minute: percent(config.increment_bp_per_minute),
        max_percent: percent(config.max_bp),
    }
}
