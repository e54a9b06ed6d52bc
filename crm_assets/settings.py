"""Settings the code location needs when it loads, validated with errors naming the variable.

Only non-secret values are read here: the destination (the assets' kind), the schedule's
cron, and the URL and DuckDB file checked early. Every value a run uses is still resolved
by Dagster from ``EnvVar`` bindings when the run starts.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter
from dagster import BackfillPolicy, DailyPartitionsDefinition, FreshnessPolicy

from crm_assets.constants import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_PATH,
    DEFAULT_HISTORY_START,
    DEFAULT_RECONCILE_CRON,
    DEFAULT_RECONCILE_DAYS,
    DEFAULT_SYNC_CRON,
    FRESHNESS_FAIL_INTERVALS,
    FRESHNESS_WARN_INTERVALS,
)
from crm_assets.deletions import (
    DEFAULT_DELETES,
    DEFAULT_SWEEP_CRON,
    DEFAULT_SWEEP_MAX_SHARE,
    DELETE_MODES,
)
from crm_assets.partitions import crm_partitions
from crm_assets.sources.crm.dlt_internals import Destination
from crm_assets.sources.crm.session import check_base_url
from crm_assets.sources.crm.window import format_moment, parse_moment

_CRON_SAMPLES = 48


class InvalidSettingError(ValueError):
    """A setting has a value the code location cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


def _check_destination(name: str) -> str:
    try:
        Destination.from_reference(name)
    except Exception as exc:
        raise InvalidSettingError(
            "CRM_DESTINATION",
            f"{name!r} is not a dlt destination; use e.g. duckdb, postgres, snowflake, bigquery",
        ) from exc
    return name


_MEMORY_SIZE = re.compile(
    r"^\s*(?P<number>\d+(\.\d+)?)\s*(?P<unit>B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE
)
_MEMORY_UNITS = {
    "B": 1,
    **{unit: 1000**power for power, unit in enumerate(("KB", "MB", "GB", "TB"), start=1)},
    **{unit: 1024**power for power, unit in enumerate(("KIB", "MIB", "GIB", "TIB"), start=1)},
}


def memory_limit_bytes(value: str) -> int:
    """Bytes in a memory limit as DuckDB reads it (``KB`` is 1000 bytes, ``KiB`` 1024).

    Raises:
        InvalidSettingError: Naming ``CRM_DUCKDB_MEMORY_LIMIT`` and the expected form.
    """
    match = _MEMORY_SIZE.match(value)
    if not match:
        raise InvalidSettingError(
            "CRM_DUCKDB_MEMORY_LIMIT",
            f"{value!r} is not a size; use a number and a unit such as 256MB or 2GB",
        )
    size = int(float(match["number"]) * _MEMORY_UNITS[match["unit"].upper()])
    if size < 1:
        raise InvalidSettingError("CRM_DUCKDB_MEMORY_LIMIT", f"{value!r} is no memory at all")
    return size


def _cron(env: Mapping[str, str], variable: str, default: str) -> str:
    cron = env.get(variable) or default
    if not croniter.is_valid(cron):
        raise InvalidSettingError(variable, f"{cron!r} is not a cron expression")
    return cron


def _delete_mode(env: Mapping[str, str]) -> str:
    mode = (env.get("CRM_DELETES") or DEFAULT_DELETES).strip().lower()
    if mode not in DELETE_MODES:
        raise InvalidSettingError(
            "CRM_DELETES", f"{mode!r} is not one of {', '.join(DELETE_MODES)}"
        )
    return mode


def share(text: str, variable: str) -> float:
    """A share between 0 (excluded) and 1, such as ``0.5``.

    Raises:
        InvalidSettingError: Naming ``variable`` and the expected form.
    """
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidSettingError(variable, f"must be a number such as 0.5, got {text!r}") from exc
    if not 0 < value <= 1:
        raise InvalidSettingError(variable, f"must be above 0 and at most 1, got {text!r}")
    return value


def _minutes(env: Mapping[str, str], variable: str) -> timedelta | None:
    text = env.get(variable)
    if not text:
        return None
    try:
        minutes = int(text)
    except ValueError as exc:
        raise InvalidSettingError(
            variable, f"must be a whole number of minutes, got {text!r}"
        ) from exc
    if minutes < 1:
        raise InvalidSettingError(variable, f"must be at least 1 minute, got {minutes}")
    return timedelta(minutes=minutes)


def _whole_seconds(env: Mapping[str, str], variable: str) -> None:
    text = env.get(variable)
    if text and not text.isdigit():
        raise InvalidSettingError(variable, f"must be a whole number of seconds, got {text!r}")


def _positive_days(env: Mapping[str, str], variable: str, default: int | None) -> int | None:
    text = env.get(variable) or (str(default) if default is not None else None)
    if text is None:
        return None
    try:
        days = int(text)
    except ValueError as exc:
        raise InvalidSettingError(
            variable, f"must be a whole number of days, got {text!r}"
        ) from exc
    if days <= 0:
        raise InvalidSettingError(variable, f"must be at least 1 day, got {days}")
    return days


def _moment(env: Mapping[str, str], variable: str, default: str | None) -> str | None:
    text = env.get(variable) or default
    if text is None:
        return None
    try:
        return format_moment(parse_moment(text, variable))
    except ValueError as exc:
        raise InvalidSettingError(variable, str(exc)) from exc


def longest_interval(cron: str) -> timedelta:
    """The longest gap between consecutive ticks of ``cron`` over its next ticks."""
    ticks = croniter(cron, datetime(2026, 1, 1, tzinfo=UTC))
    moments = [ticks.get_next(datetime) for _ in range(_CRON_SAMPLES)]
    gaps: list[timedelta] = [later - earlier for earlier, later in itertools.pairwise(moments)]
    return max(gaps)


@dataclass(frozen=True)
class LocationSettings:
    """What one CRM's definitions are built from, read from ``CRM_*`` variables."""

    destination: str = DEFAULT_DESTINATION
    dataset: str = DEFAULT_DATASET
    duckdb_path: str = DEFAULT_DUCKDB_PATH
    sync_cron: str = DEFAULT_SYNC_CRON
    history_start: str = format_moment(parse_moment(DEFAULT_HISTORY_START, "history start"))
    """The first partition's day; that partition also holds every record before it."""
    backfill_days: int | None = None
    """Partitions one run of a backfill covers at most; None: one run per backfill."""
    reconcile_days: int = DEFAULT_RECONCILE_DAYS
    reconcile_cron: str = DEFAULT_RECONCILE_CRON
    sync_start: str | None = None
    """Where the first incremental sync may start, if before today's partition."""
    deletes: str = DEFAULT_DELETES
    """How a sweep shows deletions: soft, hard, or off (no sweep schedule)."""
    sweep_cron: str = DEFAULT_SWEEP_CRON
    freshness_warn: timedelta | None = None
    """Warn after this long without a sync; None: two schedule intervals."""
    freshness_fail: timedelta | None = None
    """Fail after this long without a sync; None: three schedule intervals."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base_url_env: str = "CRM_BASE_URL"
    ) -> LocationSettings:
        """Read and check the settings.

        Args:
            environ: The variables (``os.environ`` by default).
            base_url_env: The variable holding the CRM's URL, checked if set.

        Raises:
            InvalidSettingError: Naming the first variable with a bad value.
        """
        env = os.environ if environ is None else environ
        if env.get(base_url_env):
            try:
                check_base_url(env[base_url_env])
            except ValueError as exc:
                raise InvalidSettingError(base_url_env, str(exc)) from exc
        destination = _check_destination(env.get("CRM_DESTINATION") or DEFAULT_DESTINATION)
        dataset = env.get("CRM_DATASET") or DEFAULT_DATASET
        duckdb_path = env.get("CRM_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH
        if destination == "duckdb":
            path = Path(duckdb_path)
            if path.stem == dataset:
                raise InvalidSettingError(
                    "CRM_DUCKDB_PATH",
                    f"file {path.name!r} has the stem of CRM_DATASET {dataset!r}; DuckDB cannot "
                    "tell catalog from schema, rename the file (e.g. crm_warehouse.duckdb)",
                )
            memory_limit_bytes(env.get("CRM_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT)
        for variable in ("CRM_WAREHOUSE_LOCK_WAIT_SECONDS", "CRM_DUCKDB_LOCK_WAIT_SECONDS"):
            _whole_seconds(env, variable)
        share(env.get("CRM_SWEEP_MAX_SHARE") or str(DEFAULT_SWEEP_MAX_SHARE), "CRM_SWEEP_MAX_SHARE")
        history_start = _moment(env, "CRM_HISTORY_START", DEFAULT_HISTORY_START)
        assert history_start is not None
        reconcile_days = _positive_days(env, "CRM_RECONCILE_DAYS", DEFAULT_RECONCILE_DAYS)
        assert reconcile_days is not None
        settings = cls(
            destination=destination,
            dataset=dataset,
            duckdb_path=duckdb_path,
            sync_cron=_cron(env, "CRM_SYNC_CRON", DEFAULT_SYNC_CRON),
            history_start=history_start,
            backfill_days=_positive_days(env, "CRM_BACKFILL_WINDOW_DAYS", None),
            reconcile_days=reconcile_days,
            reconcile_cron=_cron(env, "CRM_RECONCILE_CRON", DEFAULT_RECONCILE_CRON),
            sync_start=_moment(env, "CRM_SYNC_START", None),
            deletes=_delete_mode(env),
            sweep_cron=_cron(env, "CRM_SWEEP_CRON", DEFAULT_SWEEP_CRON),
            freshness_warn=_minutes(env, "CRM_FRESHNESS_WARN_MINUTES"),
            freshness_fail=_minutes(env, "CRM_FRESHNESS_FAIL_MINUTES"),
        )
        settings.freshness_policy  # noqa: B018  (checks the windows' order)
        return settings

    @property
    def partitions(self) -> DailyPartitionsDefinition:
        """The assets' daily partitions, from the day of ``history_start``."""
        return crm_partitions(self.history_start)

    @property
    def backfill_policy(self) -> BackfillPolicy:
        """One run per backfill, or runs of ``backfill_days`` partitions at most."""
        if self.backfill_days is None:
            return BackfillPolicy.single_run()
        return BackfillPolicy.multi_run(max_partitions_per_run=self.backfill_days)

    @property
    def freshness_policy(self) -> FreshnessPolicy:
        """Warn after two schedule intervals without a sync, fail after three (or as set).

        Raises:
            InvalidSettingError: The warn window is not shorter than the fail window.
        """
        interval = longest_interval(self.sync_cron)
        warn = self.freshness_warn or interval * FRESHNESS_WARN_INTERVALS
        fail = self.freshness_fail or interval * FRESHNESS_FAIL_INTERVALS
        if warn >= fail:
            raise InvalidSettingError(
                "CRM_FRESHNESS_WARN_MINUTES",
                f"the warn window ({warn}) must be shorter than the fail window ({fail}, "
                "CRM_FRESHNESS_FAIL_MINUTES or three schedule intervals)",
            )
        return FreshnessPolicy.time_window(warn_window=warn, fail_window=fail)
