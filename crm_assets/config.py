"""Run config of the CRM sync op: an optional backfill window, or a deletion sweep."""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from crm_assets.sources.crm.window import Window


class CrmSyncConfig(Config):
    """Empty for an incremental sync; a window for a backfill; or a deletion sweep.

    ``{"ops": {"crm_dlt_assets": {"config": {"window_start": "2024-01-01T00:00:00Z",
    "window_end": "2024-02-01T00:00:00Z"}}}}`` syncs the records modified in January 2024,
    merges them, and leaves the incremental cursor untouched.
    ``{"ops": {"crm_dlt_assets": {"config": {"sweep_deletes": true}}}}`` lists every record
    of the selected resources, merges them, and marks the rows the CRM no longer lists.
    """

    window_start: str | None = Field(
        default=None, description="Backfill from this ISO-8601 UTC timestamp (inclusive)."
    )
    window_end: str | None = Field(
        default=None, description="Backfill up to this ISO-8601 UTC timestamp (exclusive)."
    )
    sweep_deletes: bool = Field(
        default=False,
        description=(
            "List every record, merge them, and mark the rows the CRM no longer lists "
            "(CRM_DELETES: soft sets _crm_deleted_at, hard removes the rows)."
        ),
    )

    def window(self) -> Window | None:
        """The window to sync, or None for an incremental sync.

        Raises:
            ValueError: Only one bound is set, a bound is not ISO-8601, the end is not
                after the start, or a sweep was asked for as well.
        """
        if not self.window_start and not self.window_end:
            return None
        if self.sweep_deletes:
            raise ValueError(
                "sweep_deletes lists every record: leave window_start and window_end empty"
            )
        if not (self.window_start and self.window_end):
            raise ValueError("window_start and window_end must be set together for a backfill")
        return Window.parse(self.window_start, self.window_end)
