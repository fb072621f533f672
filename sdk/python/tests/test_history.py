"""History and recovery through the SDK (specs/history.md), on the embedded spine and on NATS."""
from __future__ import annotations

import asyncio

import arqon

TIMEOUT = 20.0


async def _publish(client: arqon.Client, room: str, texts: list) -> None:
    for text in texts:
        while True:
            try:
                await client.publish(room, text)
                break
            except arqon.RateLimited as limited:
                await asyncio.sleep(limited.retry_after_ms / 1000)


async def test_ac_history_9_a_reconnecting_client_recovers_what_it_missed_once_in_order(bus) -> None:
    # AC-HISTORY-9, AC-HISTORY-10: the SDK rejoins with its position after a drop and the app
    # sees every missed message once, in order, then live traffic.
    sub = await arqon.connect(bus.url, bus.token(sub="bob"), backoff_initial=1.0, seed=7)
    pub = await arqon.connect(bus.url, bus.token(sub="alice"))
    try:
        await sub.join("history")
        first = await sub.next_recovery(timeout=TIMEOUT)
        assert (first.recovered, first.count) == (False, 0), "a first join has nothing to recover"
        await pub.join("history")
        await _publish(pub, "history", ["before"])
        assert (await sub.recv(timeout=TIMEOUT, room="history")).text == "before"
        # Drop the subscriber's socket; it comes back after its back-off (at least 0.5 s).
        assert sub._ws is not None
        sub._ws.transport.abort()
        missed = [f"missed-{i:03d}" for i in range(150)]
        await _publish(pub, "history", missed)
        again = await sub.next_recovery(timeout=TIMEOUT)
        assert again.recovered and again.count > 0, again
        got = [(await sub.recv(timeout=TIMEOUT, room="history")).text for _ in missed]
        assert got == missed
        await _publish(pub, "history", ["after"])
        live = await sub.recv(timeout=TIMEOUT, room="history")
        assert live.text == "after" and live.offset > 0 and live.epoch
    finally:
        await sub.close()
        await pub.close()
