"""The benchmark of issue 5: every case against its named baseline, in the same run.

``make bench`` (or ``python bench/run.py --repeat 3``). Each measured operation runs in its
own process against a sandbox CRM in another process; times exclude interpreter start and
imports, peak memory is the measured process's maximum RSS. Writes
``bench/results/latest.{md,json,svg}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import requests

from crm_assets.constants import SYNC_JOB_NAME
from crm_assets.sources.crm.settings import RESOURCE_NAMES
from crm_sandbox.data import PATHS
from crm_sandbox.server import DEFAULT_TOKEN as TOKEN

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "bench" / "case.py"
SWEEP_DELETES = 7
"""Records deleted on every path before the sweep is measured."""


@dataclass(frozen=True)
class Run:
    """One measured operation."""

    seconds: float
    rows: int
    peak_mb: float


@contextmanager
def sandbox(records: int, latency: float = 0.0) -> Iterator[str]:
    """A sandbox CRM in its own process; yields its URL."""
    command = [sys.executable, "-m", "crm_sandbox", "--port", "0", "--records", str(records)]
    process = subprocess.Popen(
        [*command, "--latency", str(latency)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    match = re.search(r"serving (http://\S+)", process.stdout.readline())
    try:
        if not match:
            raise RuntimeError("the sandbox did not start")
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_process(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds from start to exit, peak RSS (MB) and standard output of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed (status {status}); run it by hand")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def case_process(kind: str, url: str, work: Path) -> tuple[float, float, dict[str, Any]]:
    """Run one case process; ``bare`` runs outside the project so no project config applies.

    Returns its whole-process seconds, peak RSS and the result it printed.
    """
    cwd = ROOT if kind == "ours" else work
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(CASE), kind, "--url", url, "--work", str(work)]
    seconds, peak, output = run_process(command, {**os.environ, "PYTHONPATH": str(ROOT)}, cwd)
    return seconds, peak, json.loads(output.strip().splitlines()[-1])


def measure(kind: str, url: str, work: Path) -> Run:
    """One case, timed by the case itself: imports and interpreter start excluded."""
    _, peak, result = case_process(kind, url, work)
    return Run(result["seconds"], result["rows"], peak)


def median(runs: list[Run]) -> Run:
    """Median time, rows and peak memory of repeated runs."""
    return Run(
        statistics.median(run.seconds for run in runs),
        runs[0].rows,
        statistics.median(run.peak_mb for run in runs),
    )


def modify(url: str, share: float, records: int) -> None:
    """Change ``share`` of every path's records through the sandbox admin API."""
    for path in PATHS:
        body: dict[str, Any] = {"path": path, "count": max(1, int(records * share))}
        requests.post(f"{url}/_sandbox/modify", json=body, timeout=60).raise_for_status()


def delete(url: str, count: int) -> None:
    """Delete ``count`` records of every path through the sandbox admin API."""
    for path in PATHS:
        body: dict[str, Any] = {"path": path, "count": count}
        requests.post(f"{url}/_sandbox/delete", json=body, timeout=60).raise_for_status()


def throughput(records: int, repeat: int, scratch: Path) -> dict[str, Run]:
    """Full loads with no latency, fetch-only and bare dlt alongside; then 1% incremental.

    Then a deletion sweep after ``SWEEP_DELETES`` records of every path were deleted, and
    ours with every page served from memory, which no network slows.
    """
    runs: dict[str, list[Run]] = {
        "fetch": [],
        "bare": [],
        "ours": [],
        "incremental": [],
        "sweep": [],
        "memory": [],
    }
    with sandbox(records) as url:
        for attempt in range(repeat):
            runs["fetch"].append(measure("fetch", url, scratch / f"fetch{attempt}"))
            runs["memory"].append(measure("memory", url, scratch / f"memory{attempt}"))
            runs["bare"].append(measure("bare", url, scratch / f"bare{attempt}"))
            work = scratch / f"ours{attempt}"
            runs["ours"].append(measure("ours", url, work))
            modify(url, 0.01, records)
            runs["incremental"].append(measure("ours", url, work))
            delete(url, SWEEP_DELETES)
            runs["sweep"].append(measure("sweep", url, work))
    return {kind: median(found) for kind, found in runs.items()}


def latency(records: int, repeat: int, scratch: Path) -> dict[str, Run]:
    """Full loads with 100 ms per request."""
    runs: dict[str, list[Run]] = {"bare": [], "ours": []}
    with sandbox(records, latency=0.1) as url:
        for attempt in range(repeat):
            for kind in runs:
                runs[kind].append(measure(kind, url, scratch / f"latency-{kind}{attempt}"))
    return {kind: median(found) for kind, found in runs.items()}


def scale(totals: list[int], repeat: int, scratch: Path) -> dict[int, Run]:
    """Our full load at each total record count (nine tables, eight paths)."""
    found: dict[int, Run] = {}
    for total in totals:
        per_path = -(-total // 9)
        with sandbox(per_path) as url:
            runs = [measure("ours", url, scratch / f"scale{total}-{n}") for n in range(repeat)]
        found[total] = median(runs)
    return found


def warehouse_rows(path: Path) -> int:
    """Rows in the nine tables of a DuckDB warehouse."""
    total = 0
    with duckdb.connect(str(path), read_only=True) as connection:
        for name in RESOURCE_NAMES:
            row = connection.execute(f"SELECT count(*) FROM crm.{name}").fetchone()
            total += int(row[0]) if row else 0
    return total


def dagster_home(scratch: Path) -> Path:
    """An instance on disk (SQLite storage, ``deploy/dagster.yaml``), as ``make run`` has it."""
    home = scratch / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


def cli_sync(url: str, home: Path, work: Path) -> Run:
    """``crm_sync_job`` through ``dagster job execute``, asset checks included."""
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRM_BASE_URL": url,
        "CRM_ACCESS_TOKEN": TOKEN,
        "CRM_DUCKDB_PATH": str(work / "crm_warehouse.duckdb"),
        "CRM_PIPELINES_DIR": str(work / "pipelines"),
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "crm_assets.definitions", "-j", SYNC_JOB_NAME]
    seconds, peak, _ = run_process(command, env, ROOT)
    return Run(seconds, warehouse_rows(work / "crm_warehouse.duckdb"), peak)


def bare_process(url: str, work: Path) -> tuple[Run, Run]:
    """Bare dlt's script as a whole process, imports included, and its run alone."""
    seconds, peak, result = case_process("bare", url, work)
    return Run(seconds, result["rows"], peak), Run(result["seconds"], result["rows"], peak)


def fixed_costs(records: int, repeat: int, scratch: Path) -> dict[str, Run]:
    """A tiny sync, whole processes: what every run pays whatever it loads.

    One untimed run first creates the instance's storage, which a deployment already has.
    """
    runs: dict[str, list[Run]] = {"bare": [], "bare_run": [], "cli": []}
    home = dagster_home(scratch)
    with sandbox(records) as url:
        cli_sync(url, home, scratch / "fixed-warm-up")
        for attempt in range(repeat):
            process, run = bare_process(url, scratch / f"fixed-bare{attempt}")
            runs["bare"].append(process)
            runs["bare_run"].append(run)
            runs["cli"].append(cli_sync(url, home, scratch / f"fixed-cli{attempt}"))
    return {kind: median(found) for kind, found in runs.items()}


def report(results: dict[str, object], args: argparse.Namespace) -> list[dict[str, object]]:
    """Rows of the result table: case, measured figures, ratio, target, met."""
    full = results["throughput"]
    lat = results["latency"]
    big = results["scale"]
    fixed = results["fixed"]
    assert isinstance(full, dict) and isinstance(lat, dict) and isinstance(big, dict)
    assert isinstance(fixed, dict)
    small_total, large_total = min(big), max(big)
    return [
        {
            "case": f"full load 9 x {args.records:,}, no latency: bare dlt / ours",
            "figures": f"{full['bare'].seconds:.1f} s / {full['ours'].seconds:.1f} s",
            "ratio": full["bare"].seconds / full["ours"].seconds,
            "target": ">= 4",
            "met": full["bare"].seconds / full["ours"].seconds >= 4,
        },
        {
            "case": "same: ours / fetch-and-parse alone",
            "figures": f"{full['ours'].seconds:.1f} s / {full['fetch'].seconds:.1f} s",
            "ratio": full["ours"].seconds / full["fetch"].seconds,
            "target": "<= 2.5",
            "met": full["ours"].seconds / full["fetch"].seconds <= 2.5,
        },
        {
            "case": "same: ours with every page served from memory / fetch-and-parse alone "
            "(the floor of the row above: no network)",
            "figures": f"{full['memory'].seconds:.1f} s / {full['fetch'].seconds:.1f} s",
            "ratio": full["memory"].seconds / full["fetch"].seconds,
            "target": "none (floor)",
            "met": None,
        },
        {
            "case": "same: peak RSS, ours (bare dlt alongside)",
            "figures": f"{full['ours'].peak_mb:.0f} MB (bare {full['bare'].peak_mb:.0f} MB)",
            "ratio": full["ours"].peak_mb / full["bare"].peak_mb,
            "target": "ours <= 500 MB",
            "met": full["ours"].peak_mb <= 500,
        },
        {
            "case": f"full load 9 x {args.latency_records:,}, 100 ms/request: bare dlt / ours",
            "figures": f"{lat['bare'].seconds:.1f} s / {lat['ours'].seconds:.1f} s",
            "ratio": lat["bare"].seconds / lat["ours"].seconds,
            "target": ">= 8",
            "met": lat["bare"].seconds / lat["ours"].seconds >= 8,
        },
        {
            "case": f"peak RSS, ours: {large_total:,} / {small_total:,} records",
            "figures": f"{big[large_total].peak_mb:.0f} MB / {big[small_total].peak_mb:.0f} MB",
            "ratio": big[large_total].peak_mb / big[small_total].peak_mb,
            "target": "<= 1.2",
            "met": big[large_total].peak_mb / big[small_total].peak_mb <= 1.2,
        },
        {
            "case": "incremental after 1% changed / our full load",
            "figures": f"{full['incremental'].seconds:.2f} s / {full['ours'].seconds:.1f} s",
            "ratio": full["incremental"].seconds / full["ours"].seconds,
            "target": "<= 0.05",
            "met": full["incremental"].seconds / full["ours"].seconds <= 0.05,
        },
        {
            "case": f"deletion sweep of 9 x {args.records:,} ({SWEEP_DELETES} deleted per path, "
            f"{full['sweep'].rows} marked) / our full load",
            "figures": f"{full['sweep'].seconds:.1f} s / {full['ours'].seconds:.1f} s",
            "ratio": full["sweep"].seconds / full["ours"].seconds,
            "target": "<= 1.3",
            "met": full["sweep"].seconds / full["ours"].seconds <= 1.3,
        },
        {
            "case": f"bare dlt's run of 9 x {args.fixed_records} records, in process / our full "
            "load (the floor of the row above: any dlt run)",
            "figures": f"{fixed['bare_run'].seconds:.2f} s / {full['ours'].seconds:.1f} s",
            "ratio": fixed["bare_run"].seconds / full["ours"].seconds,
            "target": "none (floor)",
            "met": None,
        },
        {
            "case": f"9 x {args.fixed_records} records, whole process: crm_sync_job through "
            "`dagster job execute` / bare dlt's script",
            "figures": f"{fixed['cli'].seconds:.1f} s / {fixed['bare'].seconds:.1f} s",
            "ratio": fixed["cli"].seconds / fixed["bare"].seconds,
            "target": "none (fixed costs)",
            "met": None,
        },
    ]


def markdown(rows: list[dict[str, object]], machine: str, command: str) -> str:
    """The result table with the machine and the command."""
    lines = [
        f"Machine: {machine}",
        "",
        f"Command: `{command}`",
        "",
        "| case | medians | ratio | target | met |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["ratio"]
        assert isinstance(ratio, float)
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]  # type: ignore[index]
        lines.append(
            f"| {row['case']} | {row['figures']} | {ratio:.2f} | {row['target']} | {met} |"
        )
    return "\n".join(lines) + "\n"


def svg(rows: list[dict[str, object]]) -> str:
    """A bar chart of each ratio, green where the target is met."""
    height = 40 * len(rows) + 20
    bars = []
    for index, row in enumerate(rows):
        ratio = row["ratio"]
        assert isinstance(ratio, float)
        width = min(ratio, 20.0) / 20.0 * 380
        y = 20 + 40 * index
        colour = {True: "#2e7d32", False: "#c62828", None: "#757575"}[row["met"]]  # type: ignore[index]
        label = f"{row['case']}: {ratio:.2f} (target {row['target']})"
        bars.append(
            f'<rect x="10" y="{y}" width="{width:.0f}" height="14" fill="{colour}"/>'
            f'<text x="10" y="{y - 3}" font-size="11" font-family="sans-serif">{label}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{height}">'
        + "".join(bars)
        + "</svg>\n"
    )


def main() -> int:
    """Run every case, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--records", type=int, default=20_000, help="per resource, no latency")
    parser.add_argument("--latency-records", type=int, default=5_000)
    parser.add_argument("--scale", default="100000,1000000", help="total records, two counts")
    parser.add_argument("--fixed-records", type=int, default=10, help="per resource, tiny sync")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as scratch:
        results: dict[str, object] = {
            "throughput": throughput(args.records, args.repeat, Path(scratch)),
            "latency": latency(args.latency_records, args.repeat, Path(scratch)),
            "scale": scale([int(n) for n in args.scale.split(",")], args.repeat, Path(scratch)),
            "fixed": fixed_costs(args.fixed_records, args.repeat, Path(scratch)),
        }
    machine = f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    rows = report(results, args)
    table = markdown(rows, machine, command.strip())
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(table)
    (args.out / "latest.svg").write_text(svg(rows))
    raw = {name: _plain(value) for name, value in results.items()}
    (args.out / "latest.json").write_text(
        json.dumps({"machine": machine, "results": raw}, indent=2)
    )
    return 0


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Run):
        return {"seconds": value.seconds, "rows": value.rows, "peak_mb": value.peak_mb}
    return value


if __name__ == "__main__":
    sys.exit(main())
