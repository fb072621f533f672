"""Presence through the SDK against a real node, on the embedded spine and on NATS (AC-SDK-4, US4)."""
from __future__ import annotations

from typing import Callable

import arqon

TIMEOUT = 10.0


async def until(client: arqon.Client, accept: Callable[[arqon.PresenceEvent], bool]) -> arqon.PresenceEvent:
    """The first presence event ``accept`` takes; each wait is bounded."""
    while True:
        event = await client.next_presence_event(timeout=TIMEOUT)
        if accept(event):
            return event


async def test_join_snapshot_paged_list_and_exactly_one_leave(bus) -> None:
    # AC-SDK-4 (US4-1, US4-2)
    async with arqon.connect(bus.url, bus.token(sub="alice")) as a:
        await a.join("lobby", {"status": "busy"})
        async with arqon.connect(bus.url, bus.token(sub="bob")) as b:
            await b.join("lobby")
            joined = await until(a, lambda e: e.kind == "join" and any(m.user_id == "bob" for m in e.members))
            assert [m.session_id for m in joined.members if m.user_id == "bob"] == [b.welcome.session_id]
            snapshot = await until(b, lambda e: e.kind == "snapshot")
            assert {m.user_id for m in snapshot.members} == {"alice", "bob"}
            listed = await b.presence("lobby", page_size=1)  # one member per page: follows the cursor
            assert sorted(m.user_id for m in listed) == ["alice", "bob"]
            assert [m.metadata for m in listed if m.user_id == "alice"] == [{"status": "busy"}]
        left = await until(a, lambda e: e.kind == "leave")
        assert [m.user_id for m in left.members] == ["bob"]
        # Exactly one leave: a marker join after it must be the next event about this room.
        async with arqon.connect(bus.url, bus.token(sub="carol")) as c:
            await c.join("lobby")
            after = await until(a, lambda e: True)
            assert (after.kind, [m.user_id for m in after.members]) == ("join", ["carol"])


async def test_presence_never_crosses_tenants(bus) -> None:
    # AC-SDK-4 isolation: the same room name in two tenants
    async with arqon.connect(bus.url, bus.token(tenant="acme", sub="ann")) as ann, arqon.connect(
        bus.url, bus.token(tenant="globex", sub="gus")
    ) as gus:
        await ann.join("shared-name")
        await gus.join("shared-name")
        assert [m.user_id for m in await gus.presence("shared-name")] == ["gus"]
        assert [m.user_id for m in await ann.presence("shared-name")] == ["ann"]
