"""How many processes dlt's normalize step gets: more than one only where it pays.

Records holding a list become rows of child tables, which only dlt's row-by-row normaliser
creates; on CRMs where most records hold lists, that step is close to half a full sync.
dlt spreads the step's files over ``normalize.workers`` processes, which it spawns (it
never forks under an orchestrator), and each costs about a second to start: more than the
whole step of a sync whose records mostly take the Arrow route (``columnar``), whose files
dlt imports without normalizing. So the setting is answered when dlt asks for it, right
before the step, from what waits to be normalized: the bytes of row-by-row files in the
extracted packages of the pipeline running.
"""

from __future__ import annotations

import os

import dlt

from crm_assets.sources.crm.dlt_internals import Container, PipelineContext

ROW_BY_ROW_FORMATS = frozenset({"jsonl", "typed-jsonl"})
"""Load file formats dlt normalizes row by row (the others it imports as they are)."""
PARALLEL_FROM_BYTES = 48 * 1024 * 1024
"""Row-by-row bytes from which a second process saves more than it costs to start."""
MAX_WORKERS = 4
"""Processes at most: each holds its own copy of dlt and of the schema."""


def cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def workers_for(row_by_row_bytes: int, files: int, available_cores: int) -> int:
    """Processes for a normalize step with this much row-by-row work in this many files."""
    if row_by_row_bytes < PARALLEL_FROM_BYTES:
        return 1
    return max(1, min(available_cores, files, MAX_WORKERS))


def pending_row_by_row() -> tuple[int, int] | None:
    """Bytes and number of row-by-row files waiting in the active pipeline's extracted packages.

    None when no dlt pipeline is active (a lookup outside a run).
    """
    context = Container()[PipelineContext]
    pipeline = context.pipeline() if context.is_active() else None
    if not isinstance(pipeline, dlt.Pipeline):
        return None
    sizes = [
        job.file_size
        for load_id in pipeline.list_extracted_load_packages()
        for jobs in pipeline.get_load_package_info(load_id).jobs.values()
        for job in jobs
        if job.job_file_info.file_format in ROW_BY_ROW_FORMATS
    ]
    return sum(sizes), len(sizes)


def normalize_workers() -> int | None:
    """The ``normalize.workers`` the running pipeline's next normalize step should use."""
    pending = pending_row_by_row()
    if pending is None:
        return None
    return workers_for(*pending, cores())
