"""The benchmark of issue 5: every case against its named baseline, in the same run.

``make bench`` (or ``python bench/run.py --repeat 3``). Each measured operation runs in its
own process against a sandbox CRM in another process; times exclude interpreter start and
imports, peak memory is the measured process's maximum RSS with its child processes'. Writes
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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import requests
from tree_memory import TreeSampler

from crm_assets.constants import DEFAULT_NAMES
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
def sandbox(
    records: int, latency: float = 0.0, shape: str = "plain", rate_limit: float | None = None
) -> Iterator[str]:
    """A sandbox CRM in its own process; yields its URL."""
    command = [sys.executable, "-m", "crm_sandbox", "--port", "0", "--records", str(records)]
    command += ["--latency", str(latency), "--shape", shape]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
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
    """Wall seconds from start to exit, peak RSS (MB) and standard output of a command.

    The peak is of the process and the processes it started together (sampled), or of the
    process alone (exact) where that is higher.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    sampler = TreeSampler(process.pid)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read()
    tree_peak = sampler.stop()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed (status {status}); run it by hand")
    return time.perf_counter() - started, max(usage.ru_maxrss / 1024, tree_peak), output


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


def throughput(records: int, repeat: int, scratch: Path, shape: str) -> dict[str, Run]:
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
    scratch = scratch / shape
    with sandbox(records, shape=shape) as url:
        runs["steps"] = [steps(url, scratch / "steps")]
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


def steps(url: str, work: Path) -> Run:
    """One sync of ours with the time of dlt's normalize step inside it (``bench/steps.py``).

    ``rows`` carries the normalize step's milliseconds: the part of the sync that is dlt's
    normalizer, which no code of ours can make faster through dlt's public interfaces.
    """
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "bench" / "steps.py"), "--url", url, "--work", str(work)]
    _, peak, output = run_process(command, {**os.environ, "PYTHONPATH": str(ROOT)}, ROOT)
    found = json.loads(output.strip().splitlines()[-1])
    return Run(found["whole sync"], int(found.get("normalize", 0.0) * 1000), peak)


def latency(records: int, repeat: int, scratch: Path, shape: str) -> dict[str, Run]:
    """Full loads with 100 ms per request."""
    runs: dict[str, list[Run]] = {"bare": [], "ours": []}
    with sandbox(records, latency=0.1, shape=shape) as url:
        for attempt in range(repeat):
            for kind in runs:
                work = scratch / f"latency-{shape}-{kind}{attempt}"
                runs[kind].append(measure(kind, url, work))
    return {kind: median(found) for kind, found in runs.items()}


RATE_LIMITS = (2.0, 8.0, 25.0)
LATENCIES = (0.0, 0.1)


@dataclass(frozen=True)
class Paced:
    """A full sync against a rate-limited sandbox: what the sandbox answered."""

    rate_limit: float
    latency: float
    seconds: float
    served: int
    refused: int
    answering_seconds: float

    @property
    def achieved(self) -> float:
        """Requests served per second while answering, as a share of the allowed rate."""
        return self.served / max(self.answering_seconds, 1e-9) / self.rate_limit

    @property
    def refused_share(self) -> float:
        """Refused requests (429) as a share of all requests."""
        return self.refused / max(self.served + self.refused, 1)


def rate_limited(records: int, scratch: Path) -> list[Paced]:
    """Our full load against a CRM capping requests per second, each cap and latency once."""
    found = []
    for rate in RATE_LIMITS:
        for delay in LATENCIES:
            with sandbox(records, latency=delay, rate_limit=rate) as url:
                run = measure("ours", url, scratch / f"paced-{rate}-{delay}")
                stats = requests.get(f"{url}/_sandbox/stats", timeout=60).json()
            statuses = stats["statuses"]
            found.append(
                Paced(
                    rate,
                    delay,
                    run.seconds,
                    int(statuses.get("200", 0)),
                    int(statuses.get("429", 0)),
                    float(stats["answering_seconds"]),
                )
            )
    return found


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
    """``crm_sync_job`` through ``dagster job execute``, asset checks included.

    Today's partition as the schedule launches it, on partitions that begin today: its first
    sync reads every record.
    """
    work.mkdir(parents=True)
    today = datetime.now(UTC)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRM_BASE_URL": url,
        "CRM_ACCESS_TOKEN": TOKEN,
        "CRM_DUCKDB_PATH": str(work / "crm_warehouse.duckdb"),
        "CRM_PIPELINES_DIR": str(work / "pipelines"),
        "CRM_HISTORY_START": today.strftime("%Y-%m-%dT00:00:00Z"),
    }
    tags = {"dagster/partition": today.strftime("%Y-%m-%d"), "crm/trigger": "schedule"}
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "crm_assets.definitions", "-j", DEFAULT_NAMES.job]
    command += ["--tags", json.dumps(tags)]
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


def row(case: str, figures: str, ratio: float, target: str, met: bool | None) -> dict[str, object]:
    """One row of the result table."""
    return {"case": case, "figures": figures, "ratio": ratio, "target": target, "met": met}


def shape_rows(
    shape: str, full: dict[str, Run], lat: dict[str, Run], args: argparse.Namespace
) -> list[dict[str, object]]:
    """The throughput, latency, incremental and sweep rows of one data shape."""
    ours, bare, fetch = full["ours"], full["bare"], full["fetch"]
    normalize = full["steps"].rows / 1000
    tag = f"[{shape}]"
    return [
        row(
            f"{tag} full load 9 x {args.records:,}, no latency: bare dlt / ours",
            f"{bare.seconds:.1f} s / {ours.seconds:.1f} s",
            bare.seconds / ours.seconds,
            ">= 4",
            bare.seconds / ours.seconds >= 4,
        ),
        row(
            f"{tag} same: ours / fetch-and-parse alone",
            f"{ours.seconds:.1f} s / {fetch.seconds:.1f} s",
            ours.seconds / fetch.seconds,
            "<= 2.5",
            ours.seconds / fetch.seconds <= 2.5,
        ),
        row(
            f"{tag} same: ours with every page served from memory / fetch-and-parse alone "
            "(floor of the row above: no network)",
            f"{full['memory'].seconds:.1f} s / {fetch.seconds:.1f} s",
            full["memory"].seconds / fetch.seconds,
            "none (floor)",
            None,
        ),
        row(
            f"{tag} same: dlt's normalize step inside one sync of ours / that sync "
            "(dlt's normalizer: the part no code of ours speeds up)",
            f"{normalize:.1f} s / {full['steps'].seconds:.1f} s",
            normalize / full["steps"].seconds,
            "none (floor)",
            None,
        ),
        row(
            f"{tag} same: peak RSS, ours (bare dlt alongside)",
            f"{ours.peak_mb:.0f} MB (bare {bare.peak_mb:.0f} MB)",
            ours.peak_mb / bare.peak_mb,
            "ours <= 500 MB",
            ours.peak_mb <= 500,
        ),
        row(
            f"{tag} full load 9 x {args.latency_records:,}, 100 ms/request: bare dlt / ours",
            f"{lat['bare'].seconds:.1f} s / {lat['ours'].seconds:.1f} s",
            lat["bare"].seconds / lat["ours"].seconds,
            ">= 8",
            lat["bare"].seconds / lat["ours"].seconds >= 8,
        ),
        row(
            f"{tag} incremental after 1% changed / our full load",
            f"{full['incremental'].seconds:.2f} s / {ours.seconds:.1f} s",
            full["incremental"].seconds / ours.seconds,
            "<= 0.05",
            full["incremental"].seconds / ours.seconds <= 0.05,
        ),
        row(
            f"{tag} deletion sweep ({SWEEP_DELETES} deleted per path, {full['sweep'].rows} "
            "marked) / our full load",
            f"{full['sweep'].seconds:.1f} s / {ours.seconds:.1f} s",
            full["sweep"].seconds / ours.seconds,
            "<= 1.3",
            full["sweep"].seconds / ours.seconds <= 1.3,
        ),
    ]


def report(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, object]]:
    """Rows of the result table: case, measured figures, ratio, target, met."""
    rows: list[dict[str, object]] = []
    for shape in args.shapes:
        if f"throughput-{shape}" in results and f"latency-{shape}" in results:
            rows += shape_rows(
                shape, results[f"throughput-{shape}"], results[f"latency-{shape}"], args
            )
    if "scale" in results:
        big = results["scale"]
        small_total, large_total = min(big), max(big)
        rows.append(
            row(
                f"peak RSS, ours: {large_total:,} / {small_total:,} records",
                f"{big[large_total].peak_mb:.0f} MB / {big[small_total].peak_mb:.0f} MB",
                big[large_total].peak_mb / big[small_total].peak_mb,
                "<= 1.2",
                big[large_total].peak_mb / big[small_total].peak_mb <= 1.2,
            )
        )
    if "fixed" in results and "throughput-plain" in results:
        fixed, full = results["fixed"], results["throughput-plain"]
        rows.append(
            row(
                f"bare dlt's run of 9 x {args.fixed_records} records, in process / our full "
                "load [plain] (floor of the incremental row: any dlt run)",
                f"{fixed['bare_run'].seconds:.2f} s / {full['ours'].seconds:.1f} s",
                fixed["bare_run"].seconds / full["ours"].seconds,
                "none (floor)",
                None,
            )
        )
        rows.append(
            row(
                f"9 x {args.fixed_records} records, whole process: crm_sync_job through "
                "`dagster job execute` / bare dlt's script",
                f"{fixed['cli'].seconds:.1f} s / {fixed['bare'].seconds:.1f} s",
                fixed["cli"].seconds / fixed["bare"].seconds,
                "none (fixed costs)",
                None,
            )
        )
    for paced in results.get("rate_limited", []):
        rows.append(
            row(
                f"rate limit {paced.rate_limit:g} req/s, {paced.latency * 1000:.0f} ms/request, "
                f"9 x {args.paced_records:,}: requests refused / all "
                f"({paced.served / max(paced.answering_seconds, 1e-9):.1f} req/s served, "
                f"{paced.achieved:.0%} of the limit, {paced.seconds:.0f} s)",
                f"{paced.refused} / {paced.served + paced.refused}",
                paced.refused_share,
                "<= 0.05, served >= 90% of the limit",
                paced.refused_share <= 0.05 and paced.achieved >= 0.9,
            )
        )
    return rows


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


GROUPS = ("throughput", "latency", "scale", "fixed", "rate_limited")


def main() -> int:
    """Run every case, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--records", type=int, default=20_000, help="per resource, no latency")
    parser.add_argument("--latency-records", type=int, default=5_000)
    parser.add_argument(
        "--paced-records", type=int, default=3_000, help="per resource, rate limits"
    )
    parser.add_argument("--scale", default="100000,1000000", help="total records, two counts")
    parser.add_argument("--fixed-records", type=int, default=10, help="per resource, tiny sync")
    parser.add_argument("--shapes", type=lambda text: text.split(","), default=["plain", "lists"])
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(GROUPS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as folder:
        scratch = Path(folder)
        for shape in args.shapes:
            if "throughput" in args.only:
                results[f"throughput-{shape}"] = throughput(
                    args.records, args.repeat, scratch, shape
                )
            if "latency" in args.only:
                results[f"latency-{shape}"] = latency(
                    args.latency_records, args.repeat, scratch, shape
                )
        if "scale" in args.only:
            totals = [int(n) for n in args.scale.split(",")]
            results["scale"] = scale(totals, args.repeat, scratch)
        if "fixed" in args.only:
            results["fixed"] = fixed_costs(args.fixed_records, args.repeat, scratch)
        if "rate_limited" in args.only:
            results["rate_limited"] = rate_limited(args.paced_records, scratch)
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
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Run | Paced):
        return asdict(value)
    return value


if __name__ == "__main__":
    sys.exit(main())
