"""What Dagster's bookkeeping of partitions adds to a run: one partition against many.

``python bench/partitions.py [--records 2000] [--days 1,100,1000] [--repeat 3]`` loads the
same sandbox CRM (9 paths of ``--records``) into a fresh DuckDB file, in process, as one
run of every partition of assets whose partitions begin ``--days`` days back (1: today's
partition alone, which holds every record). The sync's work is the same in every case;
what grows is Dagster recording a planned event and a materialization per partition and
asset. Prints the median seconds per case and each against the one-partition case.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, PartitionKeyRange, materialize

from crm_assets.assets import build_crm_assets
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.partitions import crm_partitions, latest_key, range_tags
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox


def one_run(url: str, days: int, work: Path) -> float:
    """Seconds of one run of every partition, partitions beginning ``days`` - 1 days back."""
    start = datetime.now(UTC) - timedelta(days=days - 1)
    partitions = crm_partitions(start.strftime("%Y-%m-%dT00:00:00Z"))
    first = partitions.get_first_partition_key() or ""
    keys = PartitionKeyRange(first, latest_key(partitions, datetime.now(UTC)))
    resources = {
        "dlt": CrmDltResource(),
        "crm_api": CrmApiResource(base_url=url, access_token=DEFAULT_TOKEN),
        "warehouse": CrmWarehouseResource(
            duckdb_path=str(work / "crm_warehouse.duckdb"), pipelines_dir=str(work / "dlt")
        ),
    }
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = materialize(
            [build_crm_assets("duckdb", partitions)],
            instance=instance,
            resources=resources,
            tags=range_tags(keys),
        )
        seconds = time.perf_counter() - started
    assert result.success
    return seconds


def main() -> None:
    """Run each case ``--repeat`` times and print the medians and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--days", default="1,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = [int(days) for days in args.days.split(",")]
    medians: dict[int, float] = {}
    with CrmSandbox(records=args.records) as crm:
        for days in cases:
            runs = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as work:
                    runs.append(one_run(crm.url, days, Path(work)))
            medians[days] = statistics.median(runs)
    base = medians[cases[0]]
    for days, seconds in medians.items():
        print(
            f"9 x {args.records} records as one run of {days} partitions: {seconds:.1f} s, "
            f"{seconds / base:.2f}x the run of {cases[0]}"
        )


if __name__ == "__main__":
    main()
