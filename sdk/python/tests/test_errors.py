"""Every refusal answers its request: typed exceptions from the call that caused them, never a time-out
(specs/protocol.md "Every refusal answers its request", specs/sdk.md AC-SDK-11 and AC-SDK-12)."""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Awaitable, Type

import pytest

import arqon
from arqon import _client
from arqon.errors import server_error
from arqon.v1 import envelope_pb2, session_pb2

# Far longer than a round trip: a refusal that arrived as a time-out would take this long.
REQUEST_TIMEOUT = 30.0
ONE_ROUND_TRIP = 2.0


async def raises(kind: Type[arqon.ServerError], call: Awaitable[object]) -> arqon.ServerError:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(kind) as raised:
        await call
    assert loop.time() - started < ONE_ROUND_TRIP, "answered by a time-out, not by the server"
    return raised.value


@contextlib.asynccontextmanager
async def client(bus) -> AsyncIterator[arqon.Client]:
    async with arqon.connect(bus.url, bus.token(sub="alice"), request_timeout=REQUEST_TIMEOUT) as c:
        yield c


async def test_ac_sdk_11_bad_rooms_raise_invalid_room_from_the_call(bus) -> None:
    # AC-SDK-11, AC-PROTOCOL-17: the grammar is checked while the frame is decoded; the error still
    # carries the join's correlation id, so `join` raises it.
    async with client(bus) as c:
        for bad in ("a.>", "r" * 300, "with space", "*"):
            refused = await raises(arqon.InvalidRoom, c.join(bad))
            assert refused.code_name == "ERROR_CODE_INVALID_ROOM"
            assert refused.correlation_id
        # The session is still usable.
        await c.join("lobby")


async def test_ac_sdk_11_unsupported_version_and_text_frames(bus) -> None:
    # AC-SDK-11: a request in protocol version 2 is refused as its own answer; a text frame's
    # header is never read, so its error goes to the error stream (nothing was pending).
    async with client(bus) as c:
        v2 = envelope_pb2.Envelope(header=envelope_pb2.Header(protocol_version=2), heartbeat=session_pb2.Heartbeat())
        refused = await raises(arqon.ProtocolRefused, c._request(v2))
        assert refused.code_name == "ERROR_CODE_UNSUPPORTED_VERSION"
        assert c._ws is not None
        await c._ws.send("hello")
        error = await asyncio.wait_for(c.next_error(), ONE_ROUND_TRIP)
        assert isinstance(error, arqon.ProtocolRefused)
        assert error.code_name == "ERROR_CODE_TEXT_FRAME"
        assert error.correlation_id == ""


async def test_ac_sdk_11_payload_and_rate_limit_refusals_are_typed(bus) -> None:
    # AC-SDK-11
    async with client(bus) as c:
        await c.join("lobby")
        await raises(arqon.NotInRoom, c.publish("elsewhere", "hi"))
        await raises(arqon.PayloadTooLarge, c.publish("lobby", b"x" * (62 * 1024)))
    # The tenant `throttled` has a bucket of 3 (conftest): a burst of 8 publishes, concurrently;
    # the refused ones raise RateLimited with a retry-after, each from its own publish call.
    async with arqon.connect(bus.url, bus.token(tenant="throttled"), request_timeout=REQUEST_TIMEOUT) as t:
        await t.join("lobby")
        results = await asyncio.wait_for(
            asyncio.gather(*(t.publish("lobby", f"m{i}") for i in range(8)), return_exceptions=True),
            ONE_ROUND_TRIP,
        )
        limited = [r for r in results if isinstance(r, arqon.RateLimited)]
        assert 1 <= len(limited) <= 5, results
        assert all(r.retry_after_ms > 0 for r in limited)
        assert all(r is None or isinstance(r, arqon.RateLimited) for r in results), results


def test_ac_sdk_10_every_error_code_maps_to_one_typed_exception() -> None:
    # AC-SDK-10
    expected = {
        "INVALID_ROOM": arqon.InvalidRoom,
        "NOT_IN_ROOM": arqon.NotInRoom,
        "ROOM_LIMIT": arqon.RoomLimit,
        "PAYLOAD_TOO_LARGE": arqon.PayloadTooLarge,
        "RATE_LIMITED": arqon.RateLimited,
        "FORBIDDEN": arqon.Forbidden,
        "SERVER_DRAINING": arqon.ServerDraining,
        "HISTORY_UNAVAILABLE": arqon.HistoryUnavailable,
        "TOKEN_EXPIRED": arqon.TokenRefused,
        "TEXT_FRAME": arqon.ProtocolRefused,
        "UNSUPPORTED_VERSION": arqon.ProtocolRefused,
        "POLICY_TIMEOUT": arqon.PolicyBlocked,
        "DIGEST_MISMATCH": arqon.GovernanceRefused,
        "INTERNAL": arqon.ServerError,
    }
    for name, kind in expected.items():
        code = session_pb2.ErrorCode.Value(f"ERROR_CODE_{name}")
        assert type(server_error(session_pb2.Error(code=code, message="m"))) is kind, name
    for code in session_pb2.ErrorCode.values():
        assert isinstance(server_error(session_pb2.Error(code=code)), arqon.ServerError)


class _FakeSocket:
    def __init__(self) -> None:
        self.sent: list = []
        self.first = asyncio.Event()

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)
        self.first.set()


def _error(correlation_id: str, code: int) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(
        header=envelope_pb2.Header(protocol_version=1, correlation_id=correlation_id),
        error=session_pb2.Error(code=code, correlation_id=correlation_id),
    )


async def test_ac_sdk_12_an_uncorrelated_error_fails_only_an_unambiguous_request() -> None:
    # AC-SDK-12: no socket; the dispatcher alone.
    c = arqon.Client("ws://unused", "token")
    loop = asyncio.get_running_loop()
    only = loop.create_future()
    c._pending["c-1"] = only
    c._dispatch(_error("", session_pb2.ERROR_CODE_PROTOCOL_ERROR))
    assert only.done() and only.result().error.code == session_pb2.ERROR_CODE_PROTOCOL_ERROR
    first, second = loop.create_future(), loop.create_future()
    c._pending.update({"c-2": first, "c-3": second})
    c._dispatch(_error("", session_pb2.ERROR_CODE_TEXT_FRAME))
    assert not first.done() and not second.done()
    error = await asyncio.wait_for(c.next_error(), 1.0)
    assert isinstance(error, arqon.ProtocolRefused)
    c._dispatch(_error("c-3", session_pb2.ERROR_CODE_ROOM_LIMIT))
    assert second.done() and not first.done()


async def test_heartbeats_carry_a_header_so_the_server_accepts_them() -> None:
    # A heartbeat without a header is a protocol error to the server (and, uncorrelated, it would
    # have failed the client's only pending request).
    ws = _FakeSocket()
    task = asyncio.create_task(_client.Client("ws://unused", "t")._heartbeat_loop(ws, 100))  # type: ignore[arg-type]
    await asyncio.wait_for(ws.first.wait(), 5.0)
    task.cancel()
    sent = envelope_pb2.Envelope.FromString(ws.sent[0])
    assert sent.header.protocol_version == _client.PROTOCOL_VERSION
    assert sent.WhichOneof("body") == "heartbeat"
