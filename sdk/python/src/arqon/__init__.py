"""ArqonBus Python SDK: ``client = await arqon.connect(url, token)``, then join, publish and receive.

See ``sdk/python/README.md`` for the quick start and the API reference.
"""
from arqon._client import Client, Member, Message, PresenceEvent, Recovery, Welcome, connect
from arqon.errors import (
    CLOSE_CODES,
    ArqonError,
    AuthError,
    ConnectionClosed,
    Forbidden,
    GovernanceRefused,
    InvalidRoom,
    NotInRoom,
    PayloadTooLarge,
    PolicyBlocked,
    ProtocolError,
    ProtocolRefused,
    RateLimited,
    RoomLimit,
    ServerDraining,
    HistoryUnavailable,
    ServerError,
    TokenRefused,
    Unavailable,
)
from arqon.governance import DigestMismatch, proposal_digest, verify_approval

__version__ = "0.1.0"

__all__ = [
    "CLOSE_CODES",
    "ArqonError",
    "AuthError",
    "Client",
    "ConnectionClosed",
    "DigestMismatch",
    "Forbidden",
    "GovernanceRefused",
    "InvalidRoom",
    "Member",
    "Message",
    "Recovery",
    "NotInRoom",
    "PayloadTooLarge",
    "PolicyBlocked",
    "PresenceEvent",
    "ProtocolError",
    "ProtocolRefused",
    "RateLimited",
    "RoomLimit",
    "ServerDraining",
    "HistoryUnavailable",
    "ServerError",
    "TokenRefused",
    "Unavailable",
    "Welcome",
    "connect",
    "proposal_digest",
    "verify_approval",
]
