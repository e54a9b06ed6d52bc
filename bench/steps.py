"""Where one sync's time goes: wall time inside each step, printed as JSON.

``python bench/steps.py --url URL --work DIR`` runs the nine assets in process (as
``bench/case.py ours`` does) against a running sandbox (``crm-sandbox --records 20000``)
and adds up the time spent in dlt's extract, normalize and load steps and in the source's
steps. Times nest: extract includes the source's steps.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from typing import Any

import case
from dlt.extract import extractors
from dlt.extract.incremental import Incremental
from dlt.pipeline.pipeline import Pipeline
from instrument import STEPS, around, one_sync_arguments

from crm_assets.sources.crm import columnar, prefetch, recent, timestamps

TIMED: list[tuple[Any, str, str]] = [
    (recent.SkipUnchanged, "__call__", "lookback filter"),
    (timestamps.ParseTimestamps, "__call__", "timestamp parsing"),
    (columnar.TableShape, "flatten", "flattening"),
    (columnar.TableShape, "table", "arrow tables"),
    (Incremental, "__call__", "dlt incremental"),
    (extractors.ArrowExtractor, "write_items", "dlt arrow writer"),
    (extractors.ObjectExtractor, "write_items", "dlt dict writer"),
    (prefetch.Prefetcher, "__call__", "pages (incl. waiting)"),
]


def timed(owner: Any, name: str, label: str, totals: dict[str, float]) -> None:
    """Replace ``owner.name`` with a wrapper adding its wall time to ``totals[label]``."""

    def leave(started: float) -> None:
        totals[label] += time.perf_counter() - started

    around(owner, name, time.perf_counter, leave)


def main() -> int:
    """Time one sync and print the seconds per step."""
    args = one_sync_arguments(__doc__)
    totals: dict[str, float] = defaultdict(float)
    for owner, name, label in [*TIMED, *((Pipeline, step, step) for step in STEPS)]:
        timed(owner, name, label, totals)
    instance, assets = case.deployment()
    started = time.perf_counter()
    rows = case.ours(args.url, args.work, instance, assets)
    totals["whole sync"] = time.perf_counter() - started
    ordered = sorted(totals.items(), key=lambda item: -item[1])
    print(json.dumps({"rows": rows, **{label: round(seconds, 2) for label, seconds in ordered}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
