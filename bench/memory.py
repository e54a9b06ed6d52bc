"""Where one sync's memory peaks: the process's peak RSS within each dlt step, as JSON.

``python bench/memory.py --url URL --work DIR`` runs the nine assets in process (as
``bench/case.py ours`` does) against a running sandbox (``crm-sandbox --records N``) while a
thread samples the resident set size every 50 ms, and prints the highest sample before,
during and after dlt's extract, normalize and load steps. ``bench/steps.py`` is its twin
for time.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dlt.pipeline.pipeline import Pipeline

STEPS = ("extract", "normalize", "load")
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

    def around(self, step: str) -> None:
        """Attribute samples taken while ``Pipeline.<step>`` runs to it, later ones to after it."""
        original = getattr(Pipeline, step)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.phase = step
            try:
                return original(*args, **kwargs)
            finally:
                self.phase = f"after {step}"

        setattr(Pipeline, step, wrapper)


def main() -> int:
    """Run one sync and print the peak RSS per phase, in MiB."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    case = importlib.import_module("case")
    sampler = PeakPerPhase()
    for step in STEPS:
        sampler.around(step)
    instance, assets = case.deployment()
    sampler.phase = "before the sync"
    rows = case.ours(args.url, args.work, instance, assets)
    time.sleep(2 * SAMPLE_SECONDS)
    peaks = {phase: round(peak) for phase, peak in sampler.peaks.items()}
    print(json.dumps({"rows": rows, "peak_rss_mib": peaks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
