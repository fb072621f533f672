"""Typed exceptions raised by the ArqonBus client."""
from __future__ import annotations

from typing import Dict, Optional, Type

from arqon.v1 import session_pb2

#: WebSocket close codes the server uses (specs/protocol.md).
CLOSE_CODES = {
    4000: "too many protocol errors",
    4001: "token expired",
    4002: "token invalid",
    4003: "forbidden",
    4004: "unsupported protocol version",
    4005: "heartbeat timeout",
    4006: "slow consumer",
    4007: "server draining",
    4008: "frame too large",
    4009: "internal error",
}

#: Close codes after which reconnecting with the same token cannot succeed.
FATAL_CLOSE_CODES = frozenset({4001, 4002, 4003, 4004})

_POLICY_CODES = frozenset(
    {
        session_pb2.ERROR_CODE_POLICY_BLOCKED,
        session_pb2.ERROR_CODE_POLICY_TRAP,
        session_pb2.ERROR_CODE_POLICY_TIMEOUT,
        session_pb2.ERROR_CODE_POLICY_MEMORY,
        session_pb2.ERROR_CODE_POLICY_ABI,
        session_pb2.ERROR_CODE_POLICY_LOAD,
    }
)


class ArqonError(Exception):
    """Base class of every error this SDK raises."""


class AuthError(ArqonError):
    """The server refused the token (HTTP 401 before the upgrade)."""

    def __init__(self, status: int, body: str = "") -> None:
        super().__init__(f"authentication refused (HTTP {status}){': ' + body if body else ''}")
        self.status = status
        self.body = body


class Unavailable(ArqonError):
    """The server refused the connection for now (HTTP 503); retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: Optional[float]) -> None:
        super().__init__(f"server unavailable, retry after {retry_after}s")
        self.retry_after = retry_after


class ProtocolError(ArqonError):
    """The server sent something this client cannot understand, or answered with a protocol error."""


class ServerError(ArqonError):
    """The server answered a request with an ``Error`` envelope."""

    def __init__(self, code: int, message: str, correlation_id: str = "", retry_after_ms: int = 0) -> None:
        name = session_pb2.ErrorCode.Name(code) if code in session_pb2.ErrorCode.values() else str(code)
        super().__init__(f"{name}: {message}")
        self.code = code
        self.code_name = name
        self.message = message
        self.correlation_id = correlation_id
        self.retry_after_ms = retry_after_ms


class PolicyBlocked(ServerError):
    """A safety policy blocked the message (or failed, which blocks too: fail closed)."""


class RateLimited(ServerError):
    """The publish rate was exceeded; ``retry_after_ms`` says when to try again."""


class InvalidRoom(ServerError):
    """The room name fails the grammar ``[A-Za-z0-9_-]{1,128}`` (``INVALID_ROOM``)."""


class NotInRoom(ServerError):
    """The session has not joined the room (``NOT_IN_ROOM``)."""


class RoomLimit(ServerError):
    """The session is in as many rooms as it may be (``ROOM_LIMIT``)."""


class PayloadTooLarge(ServerError):
    """The payload is above the session's limit (``PAYLOAD_TOO_LARGE``)."""


class TokenRefused(ServerError):
    """The token was refused (``UNAUTHENTICATED``, ``TOKEN_EXPIRED``, ``TOKEN_INVALID``)."""


class Forbidden(ServerError):
    """Authenticated but not allowed (``FORBIDDEN``)."""


class ServerDraining(ServerError):
    """The node is draining (``SERVER_DRAINING``); the client reconnects elsewhere."""


class HistoryUnavailable(ServerError):
    """The tenant keeps no history, or it cannot be read now (``HISTORY_UNAVAILABLE``)."""


class GovernanceRefused(ServerError):
    """A governance refusal (``DIGEST_MISMATCH``, ``CATALOG_STALE``, ``NOT_FOUND``)."""


class ProtocolRefused(ServerError, ProtocolError):
    """The server refused the frame as a protocol error (``PROTOCOL_ERROR``, ``TEXT_FRAME``,
    ``FRAME_TOO_LARGE``, ``UNSUPPORTED_VERSION``): both a ServerError and a ProtocolError."""


# The name earlier releases used.
_ProtocolServerError = ProtocolRefused


class ConnectionClosed(ArqonError):
    """The connection is closed; ``code`` is the WebSocket close code (see ``CLOSE_CODES``)."""

    def __init__(self, code: Optional[int], reason: str = "") -> None:
        text = reason or CLOSE_CODES.get(code or 0, "")
        super().__init__(f"connection closed ({code}{': ' + text if text else ''})")
        self.code = code
        self.reason = text


def _codes(*names: str) -> "frozenset[int]":
    return frozenset(session_pb2.ErrorCode.Value(f"ERROR_CODE_{name}") for name in names)


#: Every ``ErrorCode`` the server sends, and the exception it raises (``ServerError`` for the rest:
#: ``INTERNAL``, ``SLOW_CONSUMER`` and codes this SDK does not know).
_BY_CODE: "Dict[int, Type[ServerError]]" = {
    **{code: PolicyBlocked for code in _POLICY_CODES},
    **{code: TokenRefused for code in _codes("UNAUTHENTICATED", "TOKEN_EXPIRED", "TOKEN_INVALID")},
    **{code: ProtocolRefused for code in _codes("PROTOCOL_ERROR", "TEXT_FRAME", "FRAME_TOO_LARGE", "UNSUPPORTED_VERSION")},
    **{code: GovernanceRefused for code in _codes("DIGEST_MISMATCH", "CATALOG_STALE", "NOT_FOUND")},
    session_pb2.ERROR_CODE_RATE_LIMITED: RateLimited,
    session_pb2.ERROR_CODE_INVALID_ROOM: InvalidRoom,
    session_pb2.ERROR_CODE_NOT_IN_ROOM: NotInRoom,
    session_pb2.ERROR_CODE_ROOM_LIMIT: RoomLimit,
    session_pb2.ERROR_CODE_PAYLOAD_TOO_LARGE: PayloadTooLarge,
    session_pb2.ERROR_CODE_FORBIDDEN: Forbidden,
    session_pb2.ERROR_CODE_SERVER_DRAINING: ServerDraining,
    session_pb2.ERROR_CODE_HISTORY_UNAVAILABLE: HistoryUnavailable,
}


def server_error(error: "session_pb2.Error") -> ServerError:
    """Maps an ``Error`` envelope body to the most specific exception type."""
    kind = _BY_CODE.get(error.code, ServerError)
    return kind(error.code, error.message, error.correlation_id, error.retry_after_ms)
