"""Running a coroutine from code that is not async (the CLI, the failover steps, the watcher)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private event loop that never becomes the thread's current
    loop (unlike ``asyncio.run``, which leaves the thread with none: code that later asks for the
    current loop, such as Pulumi's, would then fail). From inside a running loop, in a fresh thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future: Future[T] = pool.submit(run_sync, coro)
        return future.result()
