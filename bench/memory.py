"""Where one sync's memory peaks: the process's peak RSS within each dlt step, as JSON.

``python bench/memory.py --url URL --work DIR`` runs the nine assets in process (as
``bench/case.py ours`` does) against a running sandbox (``crm-sandbox --records N``) while a
thread samples the resident set size every 50 ms, and prints the highest sample before,
during and after dlt's extract, normalize and load steps. ``bench/steps.py`` is its twin
for time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from functools import partial

import case
from dlt.pipeline.pipeline import Pipeline
from instrument import STEPS, around, one_sync_arguments

SAMPLE_SECONDS = 0.05


class PeakPerPhase:
    """Samples RSS in a thread; each sample counts toward the phase current at that moment."""

    def __init__(self) -> None:
        self.phase = "set-up"
        self.peaks: dict[str, float] = {}
        self._page = os.sysconf("SC_PAGE_SIZE")
        threading.Thread(target=self._sample, daemon=True).start()

    def rss_mb(self) -> float:
        """The process's resident set size now, in MiB."""
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page / 2**20

    def _sample(self) -> None:
        while True:
            phase = self.phase
            self.peaks[phase] = max(self.peaks.get(phase, 0.0), self.rss_mb())
            time.sleep(SAMPLE_SECONDS)

    def enter(self, step: str) -> str:
        """Attribute the samples from now on to ``step``."""
        self.phase = step
        return step

    def leave(self, step: str) -> None:
        """Attribute the samples from now on to what follows ``step``."""
        self.phase = f"after {step}"


def main() -> int:
    """Run one sync and print the peak RSS per phase, in MiB."""
    args = one_sync_arguments(__doc__)
    sampler = PeakPerPhase()
    for step in STEPS:
        around(Pipeline, step, partial(sampler.enter, step), sampler.leave)
    instance, assets = case.deployment()
    sampler.phase = "before the sync"
    rows = case.ours(args.url, args.work, instance, assets)
    time.sleep(2 * SAMPLE_SECONDS)
    peaks = {phase: round(peak) for phase, peak in sampler.peaks.items()}
    print(json.dumps({"rows": rows, "peak_rss_mib": peaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
