"""The resident memory of a process and all its descendants together, sampled.

A process's own peak RSS (``wait4``) leaves out the processes it starts, such as dlt's
normalize workers; this samples the sum over the whole tree from ``/proc`` (Linux).
"""

from __future__ import annotations

import threading
from pathlib import Path

PROC = Path("/proc")
INTERVAL_SECONDS = 0.05


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in (PROC / str(current) / "task").glob("*"):
            try:
                pending += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def rss_mb(pid: int) -> float:
    """A process's resident set size now, in MiB (0 once it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreeSampler(threading.Thread):
    """Samples the tree's summed RSS until stopped; ``peak_mb`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        """Sample every ``INTERVAL_SECONDS`` until ``stop``."""
        while not self.stopped.wait(INTERVAL_SECONDS):
            total = sum(rss_mb(pid) for pid in descendants(self.pid))
            self.peak_mb = max(self.peak_mb, total)

    def stop(self) -> float:
        """Stop sampling; the peak."""
        self.stopped.set()
        self.join()
        return self.peak_mb
