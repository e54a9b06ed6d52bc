"""The deletion sweep of a sync: what the listing missed, confirmed gone, marked at once.

The sync's dlt run lists every record of the selected resources and merges them. Then, per
table, the candidates are the live rows that run did not rewrite and whose ids the listing
did not return (a load of another run landing meanwhile rewrites rows too, and what it
rewrote says nothing of what the listing saw); ``sources.crm.sweep`` keeps those the CRM
certainly no longer lists; and all tables are marked in one transaction, so a sweep that
fails or is killed before it marks nothing.

The proof needs a moment ``T0`` before the listing began, on the CRM's clock, which stamps
every change: the earliest ``Date`` the CRM sent this sync, less a margin for servers
whose clocks differ (the lookback, never under ``SWEEP_MIN_MARGIN_SECONDS``). A CRM that
sends no ``Date`` gets the earlier of this machine's clock when the sweep began and the
cursor the previous sync left (a ``modifiedtime`` the CRM itself sent), less the margin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dlt

from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.settings import CrmResource
from crm_assets.sources.crm.sweep import (
    Confirmation,
    Listing,
    PageReader,
    candidates_of,
    confirm,
)
from crm_assets.sources.crm.window import format_moment, parse_moment
from crm_assets.warehouse_sql import DeleteMode, mark_deleted, profiles, unlisted_live_rows

DELETE_MODES = ("soft", "hard", "off")
"""``CRM_DELETES``: mark rows (``soft``), remove them (``hard``), or never sweep (``off``)."""
DEFAULT_DELETES = "soft"
DEFAULT_SWEEP_CRON = "30 3 * * 0"
"""Sundays at 03:30 UTC, half an hour after the hourly sync starts: the two are not launched
together, and a sweep that finds a sync still running waits for the warehouse (the pool, the
warehouse lock). Override with ``CRM_SWEEP_CRON``."""
DEFAULT_SWEEP_MAX_SHARE = 0.5
"""The largest share of a table's live rows one sweep may mark (``CRM_SWEEP_MAX_SHARE``)."""
SWEEP_MIN_MARGIN_SECONDS = 60.0
"""The least a sweep's start is moved back from the CRM's clock, whatever the lookback:
servers of one CRM may disagree on the time by a little, and a lookback of 0 trusts them to
the microsecond."""


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
    changes_since: str
    """``T0``: from when changes were read, on the CRM's clock."""

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
        lookback_seconds: Clock skew allowed between the CRM's servers (at least
            ``SWEEP_MIN_MARGIN_SECONDS`` is allowed).
        mode: ``soft`` marks rows, ``hard`` removes them.
        max_share: The largest share of a table's live rows one sweep may mark.
        threads: Confirmation requests in flight at once, across the tables.
        clock: The sync's view of the CRM's clock (the ``Date`` of every response).
        local_clock: This machine's clock (UTC), for a CRM that sends no ``Date``.
    """

    def __init__(
        self,
        resources: Sequence[CrmResource],
        page_size: int,
        lookback_seconds: float,
        mode: DeleteMode,
        max_share: float,
        threads: int,
        clock: CrmClock | None = None,
        local_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.resources = {resource.name: resource for resource in resources}
        self.mode = mode
        self.max_share = max_share
        self.threads = threads
        self.clock = clock or CrmClock()
        self.margin = timedelta(seconds=max(lookback_seconds, SWEEP_MIN_MARGIN_SECONDS))
        self._local_clock = local_clock
        self._began = local_clock()
        """This machine's time before the listing began."""
        self.listings = {
            resource.name: Listing(resource.cursor, page_size) for resource in resources
        }

    def starts(self, cursors_before: Mapping[str, str | None]) -> dict[str, str]:
        """``T0`` of each resource: a moment on the CRM's clock before its listing began.

        Args:
            cursors_before: Each resource's incremental cursor before this sync.
        """
        earliest = self.clock.earliest
        if earliest is not None:
            return {name: format_moment(earliest - self.margin) for name in self.resources}
        starts = {}
        for name in self.resources:
            before = cursors_before.get(name)
            bound = self._began if before is None else min(self._began, parse_moment(before, name))
            starts[name] = format_moment(bound - self.margin)
        return starts

    def finish(
        self,
        pipeline: dlt.Pipeline,
        readers: Mapping[str, PageReader],
        load_id: str | None,
        cursors_before: Mapping[str, str | None],
    ) -> dict[str, TableSweep]:
        """Confirm each table's candidates against the CRM, then mark them all at once.

        Args:
            pipeline: The sync's pipeline, after its load.
            readers: A page reader per resource swept.
            load_id: The load that merged the listing (None if it loaded nothing).
            cursors_before: Each resource's incremental cursor before this sync.

        Raises:
            SweepRefusedError: A table would lose more than ``max_share`` of its live rows.
        """
        starts = self.starts(cursors_before)
        candidates = {name: self._candidates(pipeline, name, load_id) for name in self.resources}
        with (
            ThreadPoolExecutor(self.threads, thread_name_prefix="crm-sweep") as reads,
            ThreadPoolExecutor(len(candidates) or 1, thread_name_prefix="crm-table") as tables,
        ):
            futures = {
                name: tables.submit(
                    confirm, held, self.listings[name], readers[name], starts[name], reads
                )
                for name, held in candidates.items()
            }
            found: dict[str, Confirmation] = {
                name: future.result() for name, future in futures.items()
            }
        self._check_shares(pipeline, {name: len(entry.confirmed) for name, entry in found.items()})
        marks = {name: entry.confirmed for name, entry in found.items() if entry.confirmed}
        marked = mark_deleted(pipeline, marks, self.mode, self._local_clock()) if marks else {}
        return {
            name: TableSweep(
                entry.candidates,
                len(entry.confirmed),
                marked.get(name, 0),
                entry.requests,
                entry.uncertain,
                starts[name],
            )
            for name, entry in found.items()
        }

    def _candidates(
        self, pipeline: dlt.Pipeline, name: str, load_id: str | None
    ) -> dict[str, datetime]:
        """The live rows of ``name`` that neither this load wrote nor the listing returned."""
        listing = self.listings[name]
        rows = unlisted_live_rows(pipeline, name, self.resources[name].cursor, load_id)
        return {
            key: moment for key, moment in candidates_of(rows).items() if not listing.listed(key)
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
