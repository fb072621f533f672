"""Seed 003's user stories through the SDK, against a real node on the embedded spine and on NATS."""
from __future__ import annotations

import asyncio
import urllib.request

import pytest

import arqon
import arqon.sync

TIMEOUT = 10.0


async def test_connect_gets_welcome_with_token_identity(bus) -> None:
    # AC-SDK-1 (US1-1)
    async with arqon.connect(bus.url, bus.token(tenant="acme", sub="alice")) as client:
        assert client.welcome is not None
        assert client.welcome.tenant_id == "acme"
        assert client.welcome.user_id == "alice"
        assert client.welcome.heartbeat_interval_ms > 0


async def test_invalid_token_raises_auth_error(bus) -> None:
    # AC-SDK-1 (US1-2, US1-3)
    with pytest.raises(arqon.AuthError) as refused:
        await arqon.connect(bus.url, "not-a-jwt")
    assert refused.value.status == 401


async def test_publish_reaches_room_members_of_the_same_tenant_only(bus) -> None:
    # AC-SDK-2 (US2-1, US2-2)
    async with arqon.connect(bus.url, bus.token(sub="alice")) as a, arqon.connect(
        bus.url, bus.token(sub="bob")
    ) as b, arqon.connect(bus.url, bus.token(tenant="globex", sub="eve")) as eve:
        for client in (a, b, eve):
            await client.join("general")
        await a.publish("general", "HELLO", twist_id="twist-42")
        got = await b.recv(timeout=TIMEOUT)
        assert (got.room, got.text, got.twist_id) == ("general", "HELLO", "twist-42")
        assert (got.tenant_id, got.sender_user_id) == ("acme", "alice")
        assert got.sender_session_id == a.welcome.session_id
        # Isolation: a marker published in eve's own tenant arrives; nothing of acme's came before it.
        await eve.publish("general", "globex-marker")
        first_for_eve = await eve.recv(timeout=TIMEOUT)
        assert (first_for_eve.tenant_id, first_for_eve.text) == ("globex", "globex-marker")


async def test_policy_blocks_malware_and_routes_clean_messages(bus) -> None:
    # AC-SDK-3 (US3-1, US3-2)
    async with arqon.connect(bus.url, bus.token(sub="alice")) as a, arqon.connect(bus.url, bus.token(sub="bob")) as b:
        await a.join("safety")
        await b.join("safety")
        with pytest.raises(arqon.PolicyBlocked) as blocked:
            await a.publish("safety", "this carries malware")
        assert blocked.value.code_name == "ERROR_CODE_POLICY_BLOCKED"
        await a.publish("safety", "clean")
        got = await b.recv(timeout=TIMEOUT, room="safety")
        assert got.text == "clean", "the blocked message must never be routed"


async def test_client_reconnects_and_rejoins_after_node_restart(bus) -> None:
    # AC-SDK-9
    node = bus.nodes[0]
    async with arqon.connect(bus.url, bus.token(sub="carol"), backoff_initial=0.05, backoff_max=0.5, seed=7) as c, arqon.connect(
        bus.url, bus.token(sub="dave"), backoff_initial=0.05, backoff_max=0.5, seed=8
    ) as d:
        await c.join("resilient")
        await d.join("resilient")
        node.kill()
        node.start()
        # Both re-join by themselves; publish until the message flows again (bounded).
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            try:
                await c.publish("resilient", "after-restart")
                got = await d.recv(timeout=1.0, room="resilient")
                break
            except (arqon.ConnectionClosed, asyncio.TimeoutError, arqon.ServerError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
        assert got.text == "after-restart"
        assert c.reconnects >= 1 and d.reconnects >= 1


def test_sync_facade_round_trip(bus) -> None:
    # AC-SDK-2 through the blocking wrapper
    with arqon.sync.connect(bus.url, bus.token(sub="sync-a")) as a, arqon.sync.connect(bus.url, bus.token(sub="sync-b")) as b:
        a.join("scripts")
        b.join("scripts")
        a.publish("scripts", b"\x00\x01binary", content_type="application/octet-stream")
        got = b.recv(timeout=TIMEOUT)
        assert got.payload == b"\x00\x01binary"
        assert got.content_type == "application/octet-stream"


def _counter(metrics_url: str, name: str) -> int:
    """One unlabelled counter from the node's Prometheus text on ``/metrics``."""
    with urllib.request.urlopen(metrics_url, timeout=TIMEOUT) as response:
        text = response.read().decode("utf-8")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return int(float(parts[1]))
    raise AssertionError(f"{name} not on {metrics_url}")


# AC-SDK-15
async def test_ac_sdk_15_a_burst_in_batch_frames_comes_out_once_per_message(bus) -> None:
    metrics_url = bus.nodes[0].metrics_url
    batched_before = await asyncio.to_thread(_counter, metrics_url, "arqonbus_shield_batched_envelopes")
    # The `bursty` tenant's connections may publish 300 at once (conftest.py).
    async with arqon.connect(bus.url, bus.token(tenant="bursty", sub="reader")) as reader, arqon.connect(
        bus.url, bus.token(tenant="bursty", sub="writer")
    ) as writer:
        await reader.join("burst")
        await writer.join("burst")
        # 300 publishes in flight at once: the node queues them for the reader faster than one
        # frame each can leave, and packs what is queued into batch frames.
        await asyncio.gather(*(writer.publish("burst", str(i)) for i in range(300)))
        received = []
        while len(received) < 300:
            got = await reader.recv(timeout=TIMEOUT, room="burst")
            assert (got.room, got.sender_user_id) == ("burst", "writer")
            received.append(got.text)
        assert sorted(received, key=int) == [str(i) for i in range(300)], "every message exactly once"
        assert reader.dropped == 0
        # Nothing more is on the way: a marker published now is the very next message.
        await writer.publish("burst", "marker")
        assert (await reader.recv(timeout=TIMEOUT, room="burst")).text == "marker"
    batched = await asyncio.to_thread(_counter, metrics_url, "arqonbus_shield_batched_envelopes")
    assert batched - batched_before >= 2, f"batched envelopes: {batched_before} -> {batched}"
