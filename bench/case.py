"""One measured operation, run in its own process by ``bench/run.py``; prints JSON.

Kinds: ``fetch`` (fetch and parse every page, nothing stored), ``bare`` (dlt's
``rest_api_source`` with the seed's config made valid, dlt's default settings), ``ours``
(the nine assets materialized as crm_sync_job runs them), ``sweep`` (a deletion sweep of
them), ``memory`` (``ours`` with every page read beforehand and served from memory:
``memory_served.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from crm_assets.sources.crm.settings import RESOURCES

TOKEN = "sandbox-token"
PATHS = [(resource.name, resource.path) for resource in RESOURCES]


PAGE_SIZE = 100


def pages(session: requests.Session, url: str, path: str) -> Iterator[tuple[bytes, list[Any]]]:
    """Each page of ``path`` in order, its body and its records, up to the short one."""
    page = 1
    while True:
        response = session.get(f"{url}{path}", params={"page": page, "limit": PAGE_SIZE})
        items = [item["record"] for item in response.json()["list"]]
        yield response.content, items
        if len(items) < PAGE_SIZE:
            return
        page += 1


def token_session() -> requests.Session:
    """A plain requests session sending the sandbox's token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def fetch(url: str) -> int:
    """Fetch and parse every page of the nine resources, one after another."""
    session = token_session()
    return sum(len(items) for _, path in PATHS for _, items in pages(session, url, path))


def read_pages(url: str) -> dict[tuple[str, int], bytes]:
    """Every page body of every path, by path and page number (the sandbox's own bytes)."""
    session = token_session()
    paths = sorted({path for _, path in PATHS})
    return {
        (path, number): body
        for path in paths
        for number, (body, _) in enumerate(pages(session, url, path), start=1)
    }


def bare(url: str, work: Path) -> int:
    """The seed's rest_api_source, paginator made valid, everything else dlt's default."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    paginator = {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None}
    config: dict[str, Any] = {
        "client": {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": name,
                "endpoint": {
                    "path": path,
                    "params": {"limit": 100},
                    "data_selector": "list.*.record",
                    "paginator": paginator,
                },
            }
            for name, path in PATHS
        ],
    }
    source = rest_api_source(config)  # type: ignore[arg-type]
    pipeline = dlt.pipeline(
        "bare",
        destination=dlt.destinations.duckdb(str(work / "bare_warehouse.duckdb")),
        dataset_name="crm",
        pipelines_dir=str(work / "pipelines"),
    )
    pipeline.run(source)
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    return sum(info.row_counts.get(name, 0) for name, _ in PATHS) if info else 0


def deployment() -> tuple[Any, Any]:
    """What a deployment has before any run: a Dagster instance and the loaded assets.

    Its partitions begin today, so today's partition holds every record and its first sync,
    as the schedule runs it, reads all of them: the load measured before partitions existed.
    """
    from datetime import UTC, datetime

    from dagster import DagsterInstance

    from crm_assets.assets import build_crm_assets
    from crm_assets.partitions import crm_partitions

    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    return DagsterInstance.ephemeral(), build_crm_assets("duckdb", crm_partitions(today))


def ours(url: str, work: Path, instance: Any, assets: Any, sweep: bool = False) -> int:
    """The nine assets materialized in process, as crm_sync_job runs them (a sweep, if asked).

    Returns the rows loaded, or for a sweep the rows it marked deleted.
    """
    from dagster import materialize

    from crm_assets.dlt_resource import CrmDltResource
    from crm_assets.resources import CrmApiResource, CrmWarehouseResource

    partition = assets.partitions_def.get_last_partition_key()
    result = materialize(
        [assets],
        instance=instance,
        partition_key=partition,
        tags={"crm/trigger": "sweep" if sweep else "schedule"},
        resources={
            "dlt": CrmDltResource(),
            "crm_api": CrmApiResource(base_url=url, access_token=TOKEN),
            "warehouse": CrmWarehouseResource(
                duckdb_path=str(work / "crm_warehouse.duckdb"),
                pipelines_dir=str(work / "pipelines"),
            ),
        },
        run_config={"ops": {"crm_dlt_assets": {"config": {"sweep_deletes": True}}}}
        if sweep
        else None,
    )
    key = "rows_marked_deleted" if sweep else "rows_loaded"
    rows = 0
    for event in result.get_asset_materialization_events():
        rows += int(event.materialization.metadata[key].value)  # type: ignore[arg-type]
    return rows


def main() -> int:
    """Import what the kind needs, then time only the operation."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["fetch", "bare", "ours", "sweep", "memory"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.kind != "fetch":
        import dlt  # noqa: F401  (imports are not part of the measured time)
    if args.kind == "memory":
        return from_memory(args.url, args.work)
    instance, assets = deployment() if args.kind in ("ours", "sweep") else (None, None)
    started = time.perf_counter()
    operation: dict[str, Any] = {
        "fetch": lambda: fetch(args.url),
        "bare": lambda: bare(args.url, args.work),
        "ours": lambda: ours(args.url, args.work, instance, assets),
        "sweep": lambda: ours(args.url, args.work, instance, assets, sweep=True),
    }
    rows = operation[args.kind]()
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
    return 0


def from_memory(url: str, work: Path) -> int:
    """``ours`` with every page read first (untimed) and then served from memory."""
    from memory_served import served_from_memory

    bodies = read_pages(url)
    instance, assets = deployment()
    with served_from_memory(bodies) as adapter:
        started = time.perf_counter()
        rows = ours(url, work, instance, assets)
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows, "served": adapter.served}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
