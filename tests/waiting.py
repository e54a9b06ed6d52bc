"""Waiting in tests for something a server or process does, bounded, never a fixed sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool], seconds: float, message: str, every: float = 0.05
) -> None:
    """Check ``condition`` every ``every`` seconds until it holds; fail with ``message`` after
    ``seconds``.

    For state nothing signals (a file appearing, a server's run list); where the test can be
    told, it waits on a ``threading.Event`` instead.
    """
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, message
        pause.wait(every)


def wait_for(event: threading.Event, seconds: float, message: str) -> None:
    """Wait for ``event``; fail with ``message`` if it is not set within ``seconds``."""
    assert event.wait(timeout=seconds), message
