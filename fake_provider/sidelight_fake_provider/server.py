"""Running the fake provider: in a test's event loop, in a thread, or as a process.

- `FakeProvider`: `await fp.start()` inside a running loop (or
  `async with FakeProvider() as fp`), then `fp.url`, `await fp.stop()`.
- `FakeProviderThread`: the same in a background thread with its own loop,
  for synchronous tests: `with FakeProviderThread() as fp: fp.url`.
- `main_listen(host, port)`: serve until interrupted, for
  `sidelight fake-provider --listen HOST:PORT`.

Both classes bind 127.0.0.1 on a free port and expose the state's fault and
record operations, which are safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Mapping
from types import TracebackType

from aiohttp import web

from sidelight_fake_provider.app import build_app
from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.state import DEFAULT_MODELS, FakeState, RecordedRequest

__all__ = ["FakeProvider", "FakeProviderThread", "main_listen"]

LOOPBACK = "127.0.0.1"


class _Controls:
    """Faults and records of one provider, shared by both ways of running it."""

    state: FakeState

    @property
    def name(self) -> str:
        """The provider's name, matched by a fault rule's `endpoint_name`."""
        return self.state.name

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every provider request received so far, oldest first."""
        return self.state.requests

    @property
    def faults(self) -> list[FaultRule]:
        """The fault rules still in force."""
        return self.state.faults

    def add_fault(self, rule: FaultRule) -> FaultRule:
        """Add a fault rule after the others, and return it."""
        self.state.add_fault(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.state.clear_faults()

    def clear_requests(self) -> None:
        """Forget the records."""
        self.state.clear_requests()


class FakeProvider(_Controls):
    """A fake provider served in the running event loop."""

    def __init__(
        self,
        name: str = "fake",
        *,
        api_keys: Mapping[str, str] | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
    ) -> None:
        self.state = FakeState(name=name, api_keys=dict(api_keys or {}), models=models)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The base URL, without `/v1` (OpenAI clients want `url + "/v1"`)."""
        if self._runner is None:
            raise RuntimeError("the fake provider is not started")
        return f"http://{LOOPBACK}:{self._port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        runner = web.AppRunner(build_app(self.state), access_log=None)
        try:
            sock.bind((LOOPBACK, 0))
            self._port = sock.getsockname()[1]
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProvider:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class FakeProviderThread(_Controls):
    """A fake provider served by a background thread with its own event loop."""

    def __init__(
        self,
        name: str = "fake",
        *,
        api_keys: Mapping[str, str] | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
    ) -> None:
        self._provider = FakeProvider(name, api_keys=api_keys, models=models)
        self.state = self._provider.state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, without `/v1`."""
        return self._provider.url

    def start(self) -> None:
        """Start the thread and wait until the provider listens."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"fake-{self.name}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._provider.start(), loop).result()
        except BaseException:
            self._end_loop(loop, thread)
            raise

    def stop(self) -> None:
        """Stop the provider, then the thread, and close the loop."""
        if self._loop is None or self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._provider.stop(), self._loop).result()
        finally:
            self._end_loop(self._loop, self._thread)

    def _end_loop(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeProviderThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main_listen(host: str, port: int) -> None:
    """Serve a fake provider named "fake" on `host:port` until interrupted."""

    def announce(message: object) -> None:
        print(message, file=sys.stderr, flush=True)

    web.run_app(build_app(FakeState()), host=host, port=port, access_log=None, print=announce)
