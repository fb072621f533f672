"""The asyncio ArqonBus client: one WebSocket, rooms, presence, governance, heartbeats and reconnects."""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, Generator, List, Mapping, Optional, Tuple, Union

import websockets
from websockets.exceptions import ConnectionClosed as _WsClosed
from websockets.exceptions import InvalidStatus

from arqon.errors import (
    FATAL_CLOSE_CODES,
    ArqonError,
    AuthError,
    ConnectionClosed,
    ProtocolError,
    Unavailable,
    server_error,
)
from arqon.v1 import envelope_pb2, governance_pb2, presence_pb2, session_pb2

log = logging.getLogger("arqon")

PROTOCOL_VERSION = 1
#: Bodies the control plane sends down to data planes.
DOWNSTREAM_BODIES = ("approval", "rejection", "enforce", "catalog_update")


@dataclass(frozen=True)
class Message:
    """A message delivered to a room this client joined."""

    room: str
    payload: bytes
    content_type: str
    tenant_id: str
    sender_user_id: str
    sender_session_id: str
    twist_id: str
    timestamp_us: int
    message_id: str
    #: The message's offset in the room's history (0 when the tenant keeps none) and its epoch.
    offset: int = 0
    epoch: str = ""

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode("utf-8")


@dataclass(frozen=True)
class Member:
    """A session present in a room."""

    user_id: str
    session_id: str
    node_id: str
    joined_at_us: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PresenceEvent:
    """A change of a room's members: ``kind`` is ``"snapshot"``, ``"join"`` or ``"leave"``."""

    kind: str
    room: str
    members: List[Member]


@dataclass(frozen=True)
class Welcome:
    """What the server said when the session opened."""

    session_id: str
    server_version: str
    tenant_id: str
    user_id: str
    node_id: str
    heartbeat_interval_ms: int
    max_payload_bytes: int
    max_rooms: int


@dataclass(frozen=True)
class Recovery:
    """How a join (first, or again after a reconnect) was answered from the room's history:
    ``count`` recovered messages follow; ``recovered`` is False when some are gone (refetch the
    room's state), ``truncated`` when more were missed than one recovery returns."""

    room: str
    recovered: bool
    truncated: bool
    count: int


class _RoomCursor:
    """A room's position across reconnects (the same rule as the Rust client's ``RoomCursor``):
    what to send as ``since``, and which messages the app has already seen."""

    def __init__(self) -> None:
        self.position: Optional[Tuple[str, int]] = None
        self.pending: Optional[Tuple[int, int]] = None

    def since(self) -> "session_pb2.Position":
        epoch, offset = self.position or ("", 0)
        return session_pb2.Position(offset=offset, epoch=epoch)

    def on_recovery(self, count: int, position: Optional[Tuple[str, int]]) -> None:
        if position is None:
            self.pending = None
            return
        epoch, offset = position
        if self.position is None or self.position[0] != epoch:
            self.position = (epoch, offset if count == 0 else 0)
        if count == 0:
            self._advance(offset)
            self.pending = None
        else:
            self.pending = (count, offset)

    def on_message(self, epoch: str, offset: int) -> bool:
        if not epoch:
            return True
        fresh = self.position is None or self.position[0] != epoch or offset > self.position[1]
        if fresh:
            self.position = (epoch, offset)
        if self.pending is not None:
            left, point = self.pending
            if left <= 1:
                self.pending = None
                self._advance(point)
            else:
                self.pending = (left - 1, point)
        return fresh

    def _advance(self, offset: int) -> None:
        if self.position is not None:
            self.position = (self.position[0], max(self.position[1], offset))


def _member(m: "presence_pb2.Member") -> Member:
    return Member(m.user_id, m.session_id, m.node_id, m.joined_at_us, dict(m.metadata))


class _Inbox:
    """A bounded queue that drops the oldest item when full, counting what it dropped."""

    def __init__(self, size: int) -> None:
        self.queue: "asyncio.Queue[object]" = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def put(self, item: object) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


_CLOSED = object()  # wakes iterators when the client closes for good


class Client:
    """An open session. Create it with ``await arqon.connect(url, token)``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        reconnect: bool = True,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        inbox_size: int = 10_000,
        seed: Optional[int] = None,
    ) -> None:
        self.url = url
        self._token = token
        self._reconnect = reconnect
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._request_timeout = request_timeout
        self._open_timeout = open_timeout
        self._inbox_size = inbox_size
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._ws: Optional[websockets.ClientConnection] = None
        self._pending: Dict[str, "asyncio.Future[envelope_pb2.Envelope]"] = {}
        self._rooms: Dict[str, Dict[str, str]] = {}
        self._cursors: Dict[str, _RoomCursor] = {}
        self._recoveries = _Inbox(inbox_size)
        self._presence: Dict[str, Dict[str, Member]] = {}
        self._messages = _Inbox(inbox_size)
        self._room_messages: Dict[str, _Inbox] = {}
        self._presence_events = _Inbox(inbox_size)
        self._governance = _Inbox(inbox_size)
        self._errors = _Inbox(inbox_size)
        self._tasks: List["asyncio.Task[None]"] = []
        self._supervisor: Optional["asyncio.Task[None]"] = None
        self._connected = asyncio.Event()
        self._closing = False
        self.welcome: Optional[Welcome] = None
        self.close_code: Optional[int] = None
        self.reconnects = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        """Opens the socket and waits for ``Welcome``; raises typed errors on refusal."""
        try:
            ws = await websockets.connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                subprotocols=[websockets.Subprotocol("arqon.v1.batch")],
                open_timeout=self._open_timeout,
                max_size=None,
                ping_interval=None,
            )
        except InvalidStatus as refused:
            status = refused.response.status_code
            body = refused.response.body.decode("utf-8", "replace") if refused.response.body else ""
            if status == 401:
                raise AuthError(status, body) from None
            if status == 503:
                retry = refused.response.headers.get("Retry-After")
                raise Unavailable(float(retry) if retry else None) from None
            raise ArqonError(f"upgrade refused with HTTP {status}") from None
        try:
            frame = await asyncio.wait_for(ws.recv(), self._open_timeout)
        except _WsClosed as closed:
            raise ConnectionClosed(closed.rcvd.code if closed.rcvd else None) from None
        envelopes = _unpack(_decode(frame))
        envelope = envelopes[0] if envelopes else envelope_pb2.Envelope()
        if envelope.WhichOneof("body") != "welcome":
            await ws.close()
            raise ProtocolError(f"expected Welcome, got {envelope.WhichOneof('body')}")
        w = envelope.welcome
        self.welcome = Welcome(
            w.session_id,
            w.server_version,
            w.tenant_id,
            w.user_id,
            w.node_id,
            w.heartbeat_interval_ms,
            w.limits.max_payload_bytes,
            w.limits.max_rooms,
        )
        self._ws = ws
        self.close_code = None
        self._connected.set()
        # Whatever came behind the Welcome in the same batch frame, handled as if it came alone.
        for later in envelopes[1:]:
            self._dispatch(later)
        self._tasks = [
            asyncio.create_task(self._read_loop(ws)),
            asyncio.create_task(self._heartbeat_loop(ws, w.heartbeat_interval_ms)),
        ]

    async def _start(self) -> "Client":
        await self._open()
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    async def close(self) -> None:
        """Closes the session for good (no reconnect)."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        ws = self._ws
        if ws is not None:
            await ws.close()
        for task in self._tasks:
            task.cancel()
        self._fail_pending(ConnectionClosed(1000, "closed by client"))
        for inbox in [self._messages, self._presence_events, self._governance, *self._room_messages.values()]:
            inbox.put(_CLOSED)

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _supervise(self) -> None:
        """Waits for the socket to end and reconnects with backoff when that is allowed."""
        attempt = 0
        while not self._closing:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._closing:
                return
            self._connected.clear()
            code = self.close_code
            self._fail_pending(ConnectionClosed(code))
            if not self._reconnect or code in FATAL_CLOSE_CODES:
                log.warning("arqon connection closed with %s; not reconnecting", code)
                self._closing = True
                for inbox in [self._messages, self._presence_events, self._governance]:
                    inbox.put(_CLOSED)
                return
            while not self._closing:
                delay = min(self._backoff_max, self._backoff_initial * (2**attempt))
                await asyncio.sleep(delay * (0.5 + self._random.random() / 2))
                attempt += 1
                try:
                    await self._open()
                    await self._rejoin()
                    self.reconnects += 1
                    attempt = 0
                    break
                except AuthError:
                    log.error("arqon reconnect refused: token no longer accepted")
                    self._closing = True
                    return
                except (ArqonError, OSError, asyncio.TimeoutError) as failure:
                    log.info("arqon reconnect attempt %d failed: %s", attempt, type(failure).__name__)

    async def _rejoin(self) -> None:
        # Each room again, from where the client was: the server sends what was missed.
        for room, metadata in list(self._rooms.items()):
            since = self._cursors.setdefault(room, _RoomCursor()).since()
            join = session_pb2.Join(room=room, metadata=metadata, since=since)
            await self._request(envelope_pb2.Envelope(join=join))

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    # ---- I/O loops -------------------------------------------------------------------------

    async def _read_loop(self, ws: "websockets.ClientConnection") -> None:
        try:
            async for frame in ws:
                try:
                    envelopes = _unpack(_decode(frame))
                except ProtocolError as bad:
                    log.warning("arqon: undecodable frame from server: %s", bad)
                    continue
                for envelope in envelopes:
                    self._dispatch(envelope)
        except _WsClosed:
            pass
        finally:
            self.close_code = ws.close_code

    async def _heartbeat_loop(self, ws: "websockets.ClientConnection", interval_ms: int) -> None:
        interval = max(interval_ms, 100) / 1000
        with contextlib.suppress(_WsClosed):
            while True:
                await asyncio.sleep(interval)
                await ws.send(_encode(_heartbeat()))

    def _dispatch(self, envelope: "envelope_pb2.Envelope") -> None:
        body = envelope.WhichOneof("body")
        correlation = envelope.header.correlation_id
        if body == "error" and not correlation and len(self._pending) == 1:
            # An error that answers no request fails the oldest pending one only when that is
            # unambiguous: exactly one is pending (specs/protocol.md).
            correlation = next(iter(self._pending))
        if body in ("ack", "pong", "error", "presence_update") and correlation in self._pending:
            future = self._pending.pop(correlation, None)
            if future is not None and not future.done():
                future.set_result(envelope)
            return
        if body == "error":
            self._errors.put(server_error(envelope.error))
            log.warning("arqon server error: %s", session_pb2.ErrorCode.Name(envelope.error.code))
        elif body == "message":
            m, h = envelope.message, envelope.header
            cursor = self._cursors.get(m.room)
            if cursor is not None and not cursor.on_message(m.epoch, m.offset):
                return  # seen already: the app never gets a message twice
            msg = Message(
                m.room, m.payload, m.content_type, h.tenant_id, h.sender_user_id,
                h.sender_session_id, h.twist_id, h.timestamp_us, h.message_id, m.offset, m.epoch,
            )
            self._messages.put(msg)
            room_inbox = self._room_messages.get(m.room)
            if room_inbox is not None:
                room_inbox.put(msg)
        elif body == "recovery":
            r = envelope.recovery
            position = (r.position.epoch, r.position.offset) if r.HasField("position") else None
            self._cursors.setdefault(r.room, _RoomCursor()).on_recovery(r.count, position)
            self._recoveries.put(Recovery(r.room, r.recovered, r.truncated, r.count))
        elif body == "presence_update":
            update = envelope.presence_update
            members = [_member(m) for m in update.members]
            snapshot = update.kind == presence_pb2.PRESENCE_UPDATE_KIND_SNAPSHOT
            room = self._presence.setdefault(update.room, {})
            for member in members:
                room[member.session_id] = member
            self._presence_events.put(PresenceEvent("snapshot" if snapshot else "join", update.room, members))
        elif body == "presence_leave":
            leave = envelope.presence_leave
            gone = self._presence.get(leave.room, {}).pop(leave.session_id, None)
            member = gone or Member(leave.user_id, leave.session_id, "", 0, {})
            self._presence_events.put(PresenceEvent("leave", leave.room, [member]))
        elif body in DOWNSTREAM_BODIES:
            self._governance.put(envelope)
        elif body == "drain":
            log.info("arqon server asked to reconnect elsewhere: %s", envelope.drain.reason)
        else:
            log.debug("arqon: ignoring %s", body)

    # ---- requests ----------------------------------------------------------------------------

    async def _request(self, envelope: "envelope_pb2.Envelope") -> "envelope_pb2.Envelope":
        """Sends and waits for the reply (Ack, Pong, PresenceUpdate or Error) with the same correlation id."""
        future: "asyncio.Future[envelope_pb2.Envelope]" = asyncio.get_running_loop().create_future()
        correlation = f"c-{next(self._ids)}"
        self._pending[correlation] = future
        await self._connected.wait()
        if self._closing or self._ws is None:
            self._pending.pop(correlation, None)
            raise ConnectionClosed(self.close_code)
        if not envelope.header.protocol_version:
            envelope.header.protocol_version = PROTOCOL_VERSION
        envelope.header.correlation_id = correlation
        try:
            await self._ws.send(_encode(envelope))
            reply = await asyncio.wait_for(future, self._request_timeout)
        except _WsClosed as closed:
            raise ConnectionClosed(closed.rcvd.code if closed.rcvd else None) from None
        finally:
            self._pending.pop(correlation, None)
        if reply.WhichOneof("body") == "error":
            raise server_error(reply.error)
        return reply

    async def join(self, room: str, metadata: Optional[Mapping[str, str]] = None) -> None:
        """Joins ``room``; other members see this session's ``metadata`` in presence."""
        meta = dict(metadata or {})
        self._room_messages.setdefault(room, _Inbox(self._inbox_size))
        self._presence[room] = {}
        since = self._cursors.setdefault(room, _RoomCursor()).since()
        join = session_pb2.Join(room=room, metadata=meta, since=since)
        await self._request(envelope_pb2.Envelope(join=join))
        self._rooms[room] = meta

    async def leave(self, room: str) -> None:
        """Leaves ``room``."""
        await self._request(envelope_pb2.Envelope(leave=session_pb2.Leave(room=room)))
        self._rooms.pop(room, None)
        self._cursors.pop(room, None)
        self._presence.pop(room, None)

    async def publish(
        self,
        room: str,
        data: Union[bytes, str],
        *,
        content_type: Optional[str] = None,
        twist_id: Optional[str] = None,
    ) -> None:
        """Publishes to ``room``; raises ``PolicyBlocked``, ``RateLimited`` or ``ServerError`` when refused."""
        if isinstance(data, str):
            payload, kind = data.encode("utf-8"), content_type or "text/plain; charset=utf-8"
        else:
            payload, kind = data, content_type or "application/octet-stream"
        envelope = envelope_pb2.Envelope(publish=session_pb2.Publish(room=room, payload=payload, content_type=kind))
        if twist_id:
            envelope.header.twist_id = twist_id
        await self._request(envelope)

    async def ping(self) -> float:
        """Round-trips a Ping; returns the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._request(envelope_pb2.Envelope(ping=session_pb2.Ping(nonce=next(self._ids))))
        return loop.time() - started

    async def refresh(self, token: str) -> None:
        """Sends a fresh token over the open socket; it is also used for later reconnects."""
        await self._request(envelope_pb2.Envelope(refresh=session_pb2.Refresh(token=token)))
        self._token = token

    # ---- streams -----------------------------------------------------------------------------

    async def messages(self, room: Optional[str] = None) -> AsyncIterator[Message]:
        """Yields delivered messages (of every joined room, or of ``room``) until the client closes."""
        inbox = self._messages if room is None else self._room_messages.setdefault(room, _Inbox(self._inbox_size))
        async for item in _drain(inbox):
            yield item  # type: ignore[misc]

    async def recv(self, timeout: Optional[float] = None, room: Optional[str] = None) -> Message:
        """Returns the next delivered message, waiting at most ``timeout`` seconds."""
        inbox = self._messages if room is None else self._room_messages.setdefault(room, _Inbox(self._inbox_size))
        item = await asyncio.wait_for(inbox.queue.get(), timeout)
        if item is _CLOSED:
            inbox.put(_CLOSED)
            raise ConnectionClosed(self.close_code)
        return item  # type: ignore[return-value]

    async def next_recovery(self, timeout: Optional[float] = None) -> Recovery:
        """The next join answered from history (a first join reports ``recovered=False`` and
        ``count=0``: there was nothing to recover)."""
        item = await asyncio.wait_for(self._recoveries.queue.get(), timeout)
        if item is _CLOSED:
            raise ConnectionClosed(self.close_code)
        assert isinstance(item, Recovery)
        return item

    async def presence_events(self) -> AsyncIterator[PresenceEvent]:
        """Yields presence snapshots, joins and leaves of the joined rooms."""
        async for item in _drain(self._presence_events):
            yield item  # type: ignore[misc]

    async def next_presence_event(self, timeout: Optional[float] = None) -> PresenceEvent:
        """Returns the next presence event, waiting at most ``timeout`` seconds."""
        item = await asyncio.wait_for(self._presence_events.queue.get(), timeout)
        if item is _CLOSED:
            raise ConnectionClosed(self.close_code)
        return item  # type: ignore[return-value]

    def members(self, room: str) -> List[Member]:
        """The members of ``room`` as this client last heard them (no round trip)."""
        return sorted(self._presence.get(room, {}).values(), key=lambda m: m.session_id)

    async def presence(self, room: str, page_size: int = 0) -> List[Member]:
        """Asks the server for ``room``'s full member list, following pages until the last."""
        members: List[Member] = []
        token = ""
        while True:
            request = presence_pb2.PresenceRequest(room=room, page_size=page_size, page_token=token)
            reply = await self._request(envelope_pb2.Envelope(presence_request=request))
            page = reply.presence_update
            members.extend(_member(m) for m in page.members)
            token = page.next_page_token
            if not token:
                return members

    # ---- governance --------------------------------------------------------------------------

    async def send_telemetry(self, node_id: str, metrics: Mapping[str, float], timestamp_us: int) -> None:
        """Sends a metrics digest upstream (data-plane role)."""
        body = governance_pb2.Telemetry(timestamp_us=timestamp_us, node_id=node_id, metrics=dict(metrics))
        await self._request(envelope_pb2.Envelope(telemetry=body))

    async def send_proposal(self, proposal: "governance_pb2.Proposal") -> None:
        """Sends a proposal upstream; keep it to verify the approval with ``verify_approval``."""
        await self._request(envelope_pb2.Envelope(proposal=proposal))

    async def send_alert(self, alert: "governance_pb2.Alert") -> None:
        """Sends an alert upstream."""
        await self._request(envelope_pb2.Envelope(alert=alert))

    async def send_downstream(self, envelope: "envelope_pb2.Envelope") -> None:
        """Sends an Approval, Rejection, Enforce or CatalogUpdate (tier1/operator roles only)."""
        if envelope.WhichOneof("body") not in DOWNSTREAM_BODIES:
            raise ValueError("send_downstream takes approval, rejection, enforce or catalog_update")
        await self._request(envelope)

    async def governance(self) -> AsyncIterator["envelope_pb2.Envelope"]:
        """Yields downstream governance envelopes (Approval, Rejection, Enforce, CatalogUpdate)."""
        async for item in _drain(self._governance):
            yield item  # type: ignore[misc]

    async def next_governance(self, timeout: Optional[float] = None) -> "envelope_pb2.Envelope":
        """Returns the next downstream governance envelope, waiting at most ``timeout`` seconds."""
        item = await asyncio.wait_for(self._governance.queue.get(), timeout)
        if item is _CLOSED:
            raise ConnectionClosed(self.close_code)
        return item  # type: ignore[return-value]

    async def next_error(self, timeout: Optional[float] = None) -> ArqonError:
        """Returns the next unsolicited server error."""
        return await asyncio.wait_for(self._errors.queue.get(), timeout)  # type: ignore[return-value]

    @property
    def dropped(self) -> int:
        """Messages dropped because an inbox was full (the oldest go first)."""
        return self._messages.dropped + sum(i.dropped for i in self._room_messages.values())


async def _drain(inbox: _Inbox) -> AsyncIterator[object]:
    while True:
        item = await inbox.queue.get()
        if item is _CLOSED:
            inbox.put(_CLOSED)
            return
        yield item


def _heartbeat() -> "envelope_pb2.Envelope":
    """A heartbeat frame: it needs a header with the protocol version like any other frame."""
    return envelope_pb2.Envelope(
        header=envelope_pb2.Header(protocol_version=PROTOCOL_VERSION), heartbeat=session_pb2.Heartbeat()
    )


def _encode(envelope: "envelope_pb2.Envelope") -> bytes:
    return envelope.SerializeToString()


def _decode(frame: Union[bytes, str]) -> "envelope_pb2.Envelope":
    if isinstance(frame, str):
        raise ProtocolError("server sent a text frame")
    envelope = envelope_pb2.Envelope()
    try:
        envelope.ParseFromString(frame)
    except Exception as bad:  # protobuf raises DecodeError or RuntimeWarning-derived errors
        raise ProtocolError(f"undecodable envelope: {bad}") from None
    return envelope


def _unpack(envelope: "envelope_pb2.Envelope") -> List["envelope_pb2.Envelope"]:
    """The envelopes a decoded frame carries: the inner ones of a batch frame (oldest first; a batch
    never holds a batch, specs/protocol.md), else the frame's own envelope."""
    if envelope.WhichOneof("body") == "batch":
        return list(envelope.batch.envelopes)
    return [envelope]


class _Connect:
    """What ``connect`` returns: await it for a ``Client``, or use it as ``async with``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[object, None, Client]:
        return self._client._start().__await__()

    async def __aenter__(self) -> Client:
        return await self._client._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()


def connect(url: str, token: str, **options: object) -> _Connect:
    """Connects to ``url`` (``ws://host:port/v1/socket``) with a JWT.

    ``client = await arqon.connect(url, token)`` or ``async with arqon.connect(url, token) as client``.
    Options: ``reconnect`` (default True), ``backoff_initial``, ``backoff_max``, ``request_timeout``,
    ``open_timeout``, ``inbox_size``, ``seed`` (for the reconnect jitter).
    Raises ``AuthError`` on HTTP 401 and ``Unavailable`` on HTTP 503.
    """
    return _Connect(Client(url, token, **options))  # type: ignore[arg-type]


__all__ = ["Client", "Member", "Message", "PresenceEvent", "Welcome", "connect"]
