"""Run config of the CRM sync op: an optional backfill window."""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from crm_assets.sources.crm.window import Window


class CrmSyncConfig(Config):
    """Leave both empty for an incremental sync; set both for a window backfill.

    ``{"ops": {"crm_dlt_assets": {"config": {"window_start": "2024-01-01T00:00:00Z",
    "window_end": "2024-02-01T00:00:00Z"}}}}`` syncs the records modified in January 2024,
    merges them, and leaves the incremental cursor untouched.
    """

    window_start: str | None = Field(
        default=None, description="Backfill from this ISO-8601 UTC timestamp (inclusive)."
    )
    window_end: str | None = Field(
        default=None, description="Backfill up to this ISO-8601 UTC timestamp (exclusive)."
    )

    def window(self) -> Window | None:
        """The window to sync, or None for an incremental sync.

        Raises:
            ValueError: Only one bound is set, a bound is not ISO-8601, or the end is not
                after the start.
        """
        if not self.window_start and not self.window_end:
            return None
        if not (self.window_start and self.window_end):
            raise ValueError("window_start and window_end must be set together for a backfill")
        return Window.parse(self.window_start, self.window_end)
