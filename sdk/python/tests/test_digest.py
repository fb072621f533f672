"""The Python proposal digest equals the Rust one (specs/governance.md), and approvals are verified (AC-SDK-6)."""
from __future__ import annotations

import pytest

from arqon import DigestMismatch, proposal_digest, verify_approval
from arqon.v1 import governance_pb2

# The value arqon-core's `digest_is_canonical` test pins for the same proposal.
RUST_DIGEST = "fe79107d8b0882835ccefb1d3898d4c43c698d1f88e744039617fe60e4316846"


def proposal() -> governance_pb2.Proposal:
    return governance_pb2.Proposal(
        id="prop_001",
        timestamp_us=1_700_000_000_000_000,
        variant_id=42,
        params={"beta": 2.0, "alpha": 0.5},
        reason="Latency regression detected",
        confidence=0.92,
    )


def test_digest_matches_the_rust_implementation() -> None:
    # AC-SDK-6
    assert proposal_digest(proposal()) == RUST_DIGEST


def test_digest_changes_with_every_field() -> None:
    base = proposal_digest(proposal())
    for change in (
        lambda p: setattr(p, "id", "prop_002"),
        lambda p: setattr(p, "timestamp_us", p.timestamp_us + 1),
        lambda p: p.ClearField("variant_id"),
        lambda p: p.params.__setitem__("alpha", 0.6),
        lambda p: setattr(p, "reason", "other"),
        lambda p: setattr(p, "confidence", 0.93),
    ):
        changed = proposal()
        change(changed)
        assert proposal_digest(changed) != base


def test_verify_approval_refuses_a_tampered_digest() -> None:
    p = proposal()
    verify_approval(p, governance_pb2.Approval(proposal_id=p.id, proposal_digest=RUST_DIGEST))
    with pytest.raises(DigestMismatch):
        verify_approval(p, governance_pb2.Approval(proposal_id=p.id, proposal_digest="00" * 32))
    with pytest.raises(DigestMismatch):
        verify_approval(p, governance_pb2.Approval(proposal_id="prop_999", proposal_digest=RUST_DIGEST))
