"""Real WebSocket clients for the console's browser tests, driven over stdin/stdout with the Python SDK.

Each stdin line is one JSON command; each answer is one JSON line on stdout, in order:
  {"op": "connect", "name": "alice", "url": "ws://…/v1/socket", "token": "…"}
  {"op": "join", "name": "alice", "room": "lobby", "meta": {"status": "online"}}
  {"op": "publish", "name": "alice", "room": "lobby", "text": "hello"}   -> {"ok": true} or {"ok": false, "code": "…"}
  {"op": "propose", "name": "agent", "id": "p-1", "variant": 2, "reason": "…", "confidence": 0.9}
  {"op": "close", "name": "alice"}
The test waits for each answer (no sleeps); closing stdin closes every client.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import arqon
from arqon.v1 import governance_pb2


async def main() -> None:
    clients: dict = {}
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        try:
            answer = await run(clients, command)
        except arqon.ServerError as error:
            answer = {"ok": False, "code": error.code_name, "message": error.message}
        except Exception as error:  # reported to the test, which fails on it
            answer = {"ok": False, "code": type(error).__name__, "message": str(error)}
        print(json.dumps(answer), flush=True)
    for client in clients.values():
        await client.close()


async def run(clients: dict, command: dict) -> dict:
    op, name = command["op"], command["name"]
    if op == "connect":
        client = await arqon.connect(command["url"], command["token"])
        clients[name] = client
        return {"ok": True, "session": client.welcome.session_id}
    client = clients[name]
    if op == "join":
        await client.join(command["room"], command.get("meta"))
    elif op == "publish":
        await client.publish(command["room"], command["text"])
    elif op == "propose":
        proposal = governance_pb2.Proposal(
            id=command["id"],
            timestamp_us=time.time_ns() // 1000,
            variant_id=command["variant"],
            reason=command["reason"],
            confidence=command["confidence"],
        )
        await client.send_proposal(proposal)
    elif op == "close":
        await clients.pop(name).close()
    else:
        raise ValueError(f"unknown op {op}")
    return {"ok": True}


asyncio.run(main())
