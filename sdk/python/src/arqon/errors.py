"""Typed exceptions raised by the ArqonBus client."""
from __future__ import annotations

from typing import Optional

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


class ConnectionClosed(ArqonError):
    """The connection is closed; ``code`` is the WebSocket close code (see ``CLOSE_CODES``)."""

    def __init__(self, code: Optional[int], reason: str = "") -> None:
        text = reason or CLOSE_CODES.get(code or 0, "")
        super().__init__(f"connection closed ({code}{': ' + text if text else ''})")
        self.code = code
        self.reason = text


def server_error(error: "session_pb2.Error") -> ServerError:
    """Maps an ``Error`` envelope body to the most specific exception type."""
    args = (error.code, error.message, error.correlation_id, error.retry_after_ms)
    if error.code in _POLICY_CODES:
        return PolicyBlocked(*args)
    if error.code == session_pb2.ERROR_CODE_RATE_LIMITED:
        return RateLimited(*args)
    if error.code in (session_pb2.ERROR_CODE_PROTOCOL_ERROR, session_pb2.ERROR_CODE_UNSUPPORTED_VERSION):
        return _ProtocolServerError(*args)
    return ServerError(*args)


class _ProtocolServerError(ServerError, ProtocolError):
    """A protocol error reported by the server: both a ServerError and a ProtocolError."""
