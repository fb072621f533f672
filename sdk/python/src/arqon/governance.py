"""Governance helpers for data planes: the canonical proposal digest and approval verification."""
from __future__ import annotations

import hashlib
import hmac
import struct

from arqon.v1 import governance_pb2

_DOMAIN = b"arqon.proposal.v1\x00"


def _put_str(parts: list, value: str) -> None:
    data = value.encode("utf-8")
    parts.append(struct.pack(">I", len(data)))
    parts.append(data)


def proposal_digest(proposal: "governance_pb2.Proposal") -> str:
    """Lower-case hex SHA-256 of the proposal's canonical form (specs/governance.md).

    The form does not depend on Protobuf encoding: integers are big-endian, strings carry a u32
    length prefix, params are sorted by key bytes and floats are hashed by their IEEE-754 bits.
    """
    parts: list = [_DOMAIN]
    _put_str(parts, proposal.id)
    parts.append(struct.pack(">Q", proposal.timestamp_us))
    if proposal.HasField("variant_id"):
        parts.append(b"\x01" + struct.pack(">Q", proposal.variant_id))
    else:
        parts.append(b"\x00")
    params = sorted(proposal.params.items(), key=lambda item: item[0].encode("utf-8"))
    parts.append(struct.pack(">I", len(params)))
    for key, value in params:
        _put_str(parts, key)
        parts.append(struct.pack(">d", value))
    _put_str(parts, proposal.reason)
    parts.append(struct.pack(">d", proposal.confidence))
    return hashlib.sha256(b"".join(parts)).hexdigest()


class DigestMismatch(Exception):
    """An approval that is not for the proposal this data plane sent (seed 004's TOCTOU guard)."""


def verify_approval(proposal: "governance_pb2.Proposal", approval: "governance_pb2.Approval") -> None:
    """Raises ``DigestMismatch`` unless ``approval`` approves exactly ``proposal``."""
    expected = proposal_digest(proposal)
    same_digest = hmac.compare_digest(expected.encode(), approval.proposal_digest.encode())
    if approval.proposal_id != proposal.id or not same_digest:
        raise DigestMismatch(
            f"approval for {approval.proposal_id!r} with digest {approval.proposal_digest} "
            f"does not match proposal {proposal.id!r} ({expected})"
        )
