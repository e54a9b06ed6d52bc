"""The deletion sweep of a sync: what the listing missed, confirmed gone, marked at once.

The sync's dlt run lists every record of the selected resources and merges them. Then, per
table, the live rows that run did not rewrite are the candidates; ``sources.crm.sweep``
keeps those the CRM certainly no longer lists; and all tables are marked in one transaction,
so a sweep that fails or is killed before it marks nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dlt

from crm_assets.sources.crm.settings import CrmResource
from crm_assets.sources.crm.sweep import (
    Confirmation,
    Listing,
    PageReader,
    candidates_of,
    confirm,
)
from crm_assets.sources.crm.window import format_moment
from crm_assets.warehouse_sql import DeleteMode, mark_deleted, profiles, unlisted_live_rows

DELETE_MODES = ("soft", "hard", "off")
"""``CRM_DELETES``: mark rows (``soft``), remove them (``hard``), or never sweep (``off``)."""
DEFAULT_DELETES = "soft"
DEFAULT_SWEEP_CRON = "0 3 * * 0"
"""Sundays at 03:00 UTC; override with ``CRM_SWEEP_CRON``."""
DEFAULT_SWEEP_MAX_SHARE = 0.5
"""The largest share of a table's live rows one sweep may mark (``CRM_SWEEP_MAX_SHARE``)."""


class SweepRefusedError(RuntimeError):
    """A sweep would mark more of a table than ``CRM_SWEEP_MAX_SHARE`` allows."""


@dataclass(frozen=True)
class TableSweep:
    """What a sweep found for one table."""

    candidates: int
    """Live rows the listing did not return."""
    confirmed: int
    """Candidates the CRM certainly no longer lists."""
    marked: int
    """Rows marked deleted (``soft``) or removed (``hard``)."""
    requests: int
    """Requests made to confirm the candidates."""
    uncertain: str | None
    """Why no candidate could be confirmed, if so."""

    def counts(self) -> dict[str, int]:
        """The sweep's figures, named as in the asset's metadata."""
        return {
            "rows_marked_deleted": self.marked,
            "sweep_candidates": self.candidates,
            "sweep_confirmed": self.confirmed,
            "sweep_confirm_requests": self.requests,
        }


class DeletionSweep:
    """One sweep over the selected resources.

    Args:
        resources: The resources swept.
        page_size: Records in a full page of the listing.
        lookback_seconds: Clock skew allowed between this machine and the CRM.
        mode: ``soft`` marks rows, ``hard`` removes them.
        max_share: The largest share of a table's live rows one sweep may mark.
        threads: Confirmation requests in flight at once, across the tables.
        clock: The current time (UTC).
    """

    def __init__(
        self,
        resources: Sequence[CrmResource],
        page_size: int,
        lookback_seconds: float,
        mode: DeleteMode,
        max_share: float,
        threads: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.resources = {resource.name: resource for resource in resources}
        self.mode = mode
        self.max_share = max_share
        self.threads = threads
        self._clock = clock
        self.horizon = format_moment(clock() - timedelta(seconds=lookback_seconds))
        """``T0``: before the listing began, allowing for clock skew."""
        self.listings = {
            resource.name: Listing(resource.cursor, page_size) for resource in resources
        }

    def finish(
        self, pipeline: dlt.Pipeline, readers: Mapping[str, PageReader], load_id: str | None
    ) -> dict[str, TableSweep]:
        """Confirm each table's candidates against the CRM, then mark them all at once.

        Args:
            pipeline: The sync's pipeline, after its load.
            readers: A page reader per resource swept.
            load_id: The load that merged the listing (None if it loaded nothing).

        Raises:
            SweepRefusedError: A table would lose more than ``max_share`` of its live rows.
        """
        candidates = {
            name: candidates_of(unlisted_live_rows(pipeline, name, resource.cursor, load_id))
            for name, resource in self.resources.items()
        }
        with (
            ThreadPoolExecutor(self.threads, thread_name_prefix="crm-sweep") as reads,
            ThreadPoolExecutor(len(candidates) or 1, thread_name_prefix="crm-table") as tables,
        ):
            futures = {
                name: tables.submit(
                    confirm, held, self.listings[name], readers[name], self.horizon, reads
                )
                for name, held in candidates.items()
            }
            found: dict[str, Confirmation] = {
                name: future.result() for name, future in futures.items()
            }
        self._check_shares(pipeline, {name: len(entry.confirmed) for name, entry in found.items()})
        marks = {name: entry.confirmed for name, entry in found.items() if entry.confirmed}
        marked = mark_deleted(pipeline, marks, self.mode, self._clock()) if marks else {}
        return {
            name: TableSweep(
                entry.candidates,
                len(entry.confirmed),
                marked.get(name, 0),
                entry.requests,
                entry.uncertain,
            )
            for name, entry in found.items()
        }

    def _check_shares(self, pipeline: dlt.Pipeline, confirmed: Mapping[str, int]) -> None:
        cursors = {name: self.resources[name].cursor for name, count in confirmed.items() if count}
        for name, profile in profiles(pipeline, cursors).items():
            share = confirmed[name] / max(profile.live_rows, 1)
            if share > self.max_share:
                raise SweepRefusedError(
                    f"CRM_SWEEP_MAX_SHARE: the sweep would mark {confirmed[name]} of the "
                    f"{profile.live_rows} live rows of {name} deleted ({share:.0%}), more than "
                    f"the {self.max_share:.0%} allowed; nothing was marked. Check that "
                    "CRM_BASE_URL and the token still reach the full CRM; if the records "
                    "really are gone, sweep once with CRM_SWEEP_MAX_SHARE=1"
                )
