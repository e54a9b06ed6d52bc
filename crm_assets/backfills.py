"""Sensor-launched window backfills: history in chunks, then a daily reconciliation.

History is what the first sync did not load: the records modified before ``CRM_SYNC_START``
(from ``CRM_HISTORY_START``). With ``CRM_SYNC_START`` unset the first sync loads everything
and there is no history to backfill. Reconciliation re-syncs a trailing window once a day,
once every CRM asset has been synced.

The sensor keeps its progress in its cursor (JSON), so a restart resumes where it left off.
It has at most one window pending: the next is requested only after that run succeeded,
and a failed or canceled window is requested again, never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from crm_assets.constants import (
    ASSETS_OP_NAME,
    BACKFILL_KEY_TAG,
    BACKFILL_SENSOR_INTERVAL_SECONDS,
    BACKFILL_SENSOR_NAME,
    SYNC_JOB_NAME,
    TRIGGER_TAG,
    WINDOW_END_TAG,
    WINDOW_START_TAG,
)
from crm_assets.runs import crm_run_in_progress
from crm_assets.settings import LocationSettings
from crm_assets.sources.crm.window import Window, parse_moment

RETRIED_STATUSES = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Pending:
    """The window requested last and not yet known to have succeeded."""

    kind: str
    start: str
    end: str
    attempt: int = 1

    @property
    def key(self) -> str:
        """Run key and tag of this attempt: stable, so a request is never launched twice."""
        return f"{self.kind}:{self.start}/{self.end}#{self.attempt}"


@dataclass(frozen=True)
class Progress:
    """What the sensor has done: its cursor."""

    history_end: str
    next_start: str
    pending: Pending | None = None
    reconciled_on: str | None = None

    @classmethod
    def load(cls, cursor: str | None, settings: LocationSettings, now: datetime) -> Progress:
        """Progress from a saved cursor, or a fresh start on the first tick."""
        if not cursor:
            history_end = settings.sync_start or settings.history_start
            return cls(history_end=history_end, next_start=settings.history_start)
        saved: dict[str, Any] = json.loads(cursor)
        pending = saved.pop("pending", None)
        return cls(**saved, pending=Pending(**pending) if pending else None)

    def dump(self) -> str:
        """The cursor to save."""
        return json.dumps(asdict(self), sort_keys=True)

    def done(self) -> Progress:
        """Progress after the pending window succeeded."""
        assert self.pending is not None
        if self.pending.kind == "history":
            return replace(self, next_start=self.pending.end, pending=None)
        return replace(self, pending=None)

    def next_window(
        self, settings: LocationSettings, now: datetime, synced: bool
    ) -> Pending | None:
        """The next history window, else today's reconciliation once ``synced``, else nothing."""
        start, history_end = (
            parse_moment(v, "cursor") for v in (self.next_start, self.history_end)
        )
        if start < history_end:
            end = min(start + settings.backfill_window, history_end)
            window = Window.between(start, end)
            return Pending("history", window.start, window.end)
        today = now.date().isoformat()
        if self.reconciled_on == today or not synced:
            return None
        window = Window.between(now - settings.reconcile_window, now)
        return Pending("reconcile", window.start, window.end)


def _run_status(instance: DagsterInstance, key: str) -> DagsterRunStatus | None:
    runs = instance.get_runs(filters=RunsFilter(tags={BACKFILL_KEY_TAG: key}), limit=1)
    return runs[0].status if runs else None


def _request(pending: Pending) -> RunRequest:
    window = {"window_start": pending.start, "window_end": pending.end}
    return RunRequest(
        run_key=pending.key,
        run_config={"ops": {ASSETS_OP_NAME: {"config": window}}},
        tags={
            TRIGGER_TAG: pending.kind,
            WINDOW_START_TAG: pending.start,
            WINDOW_END_TAG: pending.end,
            BACKFILL_KEY_TAG: pending.key,
        },
    )


def _launch(progress: Progress, pending: Pending) -> SensorResult:
    progress = replace(progress, pending=pending)
    if pending.kind == "reconcile":
        progress = replace(progress, reconciled_on=pending.end[:10])
    return SensorResult(run_requests=[_request(pending)], cursor=progress.dump())


def _synced(instance: DagsterInstance, keys: Collection[AssetKey]) -> bool:
    """Whether every CRM asset has been materialized at least once."""
    latest = instance.get_latest_materialization_events(keys)
    return all(latest.get(key) is not None for key in keys)


def evaluate(
    instance: DagsterInstance,
    cursor: str | None,
    settings: LocationSettings,
    now: datetime,
    keys: Collection[AssetKey],
) -> SensorResult:
    """One tick: follow the pending window, then request the next one if nothing runs."""
    progress = Progress.load(cursor, settings, now)
    pending = progress.pending
    if pending is not None:
        status = _run_status(instance, pending.key)
        if status == DagsterRunStatus.SUCCESS:
            progress = progress.done()
        elif status is None or status in RETRIED_STATUSES:
            return _launch(progress, replace(pending, attempt=pending.attempt + 1))
        else:
            message = f"{pending.kind} window {pending.start} .. {pending.end} is {status.value}"
            return SensorResult(skip_reason=message, cursor=progress.dump())
    if crm_run_in_progress(instance, keys):
        return SensorResult(skip_reason="a CRM sync is queued or running", cursor=progress.dump())
    following = progress.next_window(settings, now, _synced(instance, keys))
    if following is None:
        message = (
            f"history backfilled up to {progress.history_end}; "
            "reconciliation waits for the first sync, or ran today"
        )
        return SensorResult(skip_reason=message, cursor=progress.dump())
    return _launch(progress, following)


def build_backfill_sensor(
    settings: LocationSettings, keys: Collection[AssetKey]
) -> SensorDefinition:
    """The sensor launching history windows, then a daily reconciliation window.

    Args:
        settings: Where history begins and ends, window sizes.
        keys: The CRM assets, whose runs it waits for.
    """

    @sensor(
        name=BACKFILL_SENSOR_NAME,
        job_name=SYNC_JOB_NAME,
        minimum_interval_seconds=BACKFILL_SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def crm_backfill_sensor(context: SensorEvaluationContext) -> SensorResult:
        """Backfill CRM history before CRM_SYNC_START in windows, one run at a time.

        Once every asset has been synced, re-sync a trailing window daily, so that records
        skipped by page drift are healed.
        """
        return evaluate(context.instance, context.cursor, settings, datetime.now(UTC), keys)

    return crm_backfill_sensor
