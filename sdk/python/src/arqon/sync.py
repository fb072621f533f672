"""A small synchronous wrapper for scripts: the asyncio client runs on a private event-loop thread."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Mapping, Optional, TypeVar, Union

from arqon._client import Client, Member, Message, connect as _connect

T = TypeVar("T")


class SyncClient:
    """Blocking facade over ``arqon.Client``. Create it with ``arqon.sync.connect(url, token)``."""

    def __init__(self, url: str, token: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="arqon-sync", daemon=True)
        self._thread.start()
        try:
            self._client: Client = self._run(_open(url, token, options))
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def join(self, room: str, metadata: Optional[Mapping[str, str]] = None) -> None:
        """Joins ``room``."""
        self._run(self._client.join(room, metadata))

    def leave(self, room: str) -> None:
        """Leaves ``room``."""
        self._run(self._client.leave(room))

    def publish(self, room: str, data: Union[bytes, str], **options: Any) -> None:
        """Publishes to ``room``."""
        self._run(self._client.publish(room, data, **options))

    def recv(self, timeout: Optional[float] = None, room: Optional[str] = None) -> Message:
        """Returns the next delivered message; raises ``TimeoutError`` after ``timeout`` seconds."""
        return self._run(self._client.recv(timeout, room))

    def presence(self, room: str) -> list[Member]:
        """The room's full member list."""
        return self._run(self._client.presence(room))

    def close(self) -> None:
        """Closes the session and stops the loop thread."""
        try:
            self._run(self._client.close(), timeout=10)
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> "SyncClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _open(url: str, token: str, options: Mapping[str, Any]) -> Client:
    return await _connect(url, token, **options)


def connect(url: str, token: str, **options: Any) -> SyncClient:
    """Connects and blocks until the session is open."""
    return SyncClient(url, token, **options)
