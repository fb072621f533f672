"""Fixtures that run real parts: the `arq` binary as a node, and `nats-server` processes on free ports."""
from __future__ import annotations

import os
import pathlib
import queue
import shutil
import tempfile
import signal
import socket
import subprocess
import threading
import time
from typing import Iterator, List, Optional

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
ARQ = os.environ.get("ARQ_BIN", str(ROOT / "target" / "debug" / "arq"))
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
BAD_WORDS = ROOT / "crates" / "arqon-policy" / "fixtures" / "bad_words.wat"
STARTUP = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float) -> None:
    """Waits until something accepts TCP connections on ``port`` (a readiness probe, bounded)."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port}") from None
            time.sleep(0.02)


class NatsServer:
    """A real nats-server on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        # JetStream holds the rooms' history, which nodes keep by default.
        self.store = tempfile.mkdtemp(prefix="arqon-nats-")
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-sd", self.store, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, time.monotonic() + STARTUP)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.store, ignore_errors=True)


class Node:
    """A real ArqonBus node: `arq serve --config <file> --listen 127.0.0.1:<port>`."""

    def __init__(self, workdir: pathlib.Path, keys: pathlib.Path, nats: Optional[NatsServer], name: str = "node-1") -> None:
        self.workdir = workdir
        self.keys = keys
        self.config = workdir / f"{name}.toml"
        spine = f'kind = "nats"\nnats_urls = ["{nats.url}"]' if nats else 'kind = "embedded"'
        self.config.write_text(
            f"""
[node]
id = "{name}"
listen = "127.0.0.1:0"
dev = true
drain_timeout = "1s"

[auth]
jwks_file = "{keys / 'jwks.json'}"
issuer = "arqon-dev"
audience = "arqon"

[spine]
{spine}

[session]
heartbeat_interval = "1s"
idle_timeout = "5s"

[policy]
global = ["{BAD_WORDS}"]
# Wall-clock budget: generous, so a busy CI machine never times out a clean message (fail closed).
time_budget = "250ms"

[limits]
# Deep enough for a burst of 300 publishes whose acks and echoes are all queued for the publisher
# at once (AC-SDK-15); the default (256) closes it as a slow consumer.
outbound_queue_depth = 4096

# A tenant with a tiny publish bucket, for the rate-limit tests.
[limits.tenants.throttled]
connection_publish = {{ per_sec = 1, burst = 3 }}

# A tenant whose connections may burst hundreds of publishes at once, for the batch-frame test.
[limits.tenants.bursty]
connection_publish = {{ per_sec = 100000, burst = 100000 }}

[telemetry]
log_format = "json"
log_level = "warn"
""",
            encoding="utf-8",
        )
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/socket"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [ARQ, "--color", "never", "serve", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}"],
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._wait_for_line("socket:")

    def _wait_for_line(self, marker: str) -> str:
        """Reads the node's stdout on a helper thread until ``marker`` shows, or fails at the deadline."""
        assert self.proc is not None and self.proc.stdout is not None
        lines: "queue.Queue[str]" = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"arq serve did not print {marker!r}") from None
            if marker in line:
                return line

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class Bus:
    """One running bus for a test module: keys, a node, and a token mint."""

    def __init__(self, tmp: pathlib.Path, spine: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.keys = tmp / "keys"
        subprocess.run([ARQ, "--color", "never", "auth", "keys", "gen", "--out", str(self.keys)], check=True, capture_output=True)
        self.nats = NatsServer() if spine == "nats" else None
        self.nodes: List[Node] = [Node(tmp, self.keys, self.nats)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def token(self, tenant: str = "acme", sub: str = "alice", role: str = "user", ttl: str = "1h") -> str:
        out = subprocess.run(
            [ARQ, "--color", "never", "auth", "gen", "--keys", str(self.keys), "--tenant", tenant, "--sub", sub, "--role", role, "--ttl", ttl],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.nats:
            self.nats.stop()


@pytest.fixture(scope="module", params=["embedded", "nats"])
def bus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    running = Bus(tmp_path_factory.mktemp(f"bus-{request.param}"), request.param)
    yield running
    running.close()
