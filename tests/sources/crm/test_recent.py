"""The lookback filter: records re-fetched unchanged are dropped, the window is kept in state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import pytest

from crm_assets.sources.crm import recent
from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.recent import STATE_KEY, SkipUnchanged

LOOKBACK = 300.0


def record(key: str, minute: int, second: int = 0) -> dict[str, Any]:
    """A record whose cursor is 2024-01-01 at 10:minute:second UTC."""
    return {"id": key, "modifiedtime": f"2024-01-01T10:{minute:02d}:{second:02d}Z"}


class Sync:
    """Extracts batches of records through the filter with one dlt pipeline, as syncs do."""

    def __init__(self, tmp_path: Path) -> None:
        self.pipeline = dlt.pipeline("recent_test", pipelines_dir=str(tmp_path))
        self.clock = CrmClock()

    def __call__(self, *batches: Any) -> list[str]:
        """The ids that passed the filter, in order."""
        passed: list[str] = []

        @dlt.resource(name="things", primary_key="id")
        def things() -> Any:
            yield from batches

        resource = things().add_step(SkipUnchanged("things", "modifiedtime", LOOKBACK, self.clock))
        resource.add_map(lambda item: passed.append(item["id"]) or item)
        self.pipeline.extract(resource)
        return passed

    def entries(self) -> dict[str, Any]:
        """What the resource's state holds per id."""
        state = self.pipeline.state["sources"]["recent_test"]["resources"]["things"]
        return dict(state[STATE_KEY])

    def window(self) -> dict[str, str]:
        """The (id, cursor) pairs the resource's state holds."""
        return {key: entry[0] for key, entry in self.entries().items()}


@pytest.fixture
def sync(tmp_path: Path) -> Sync:
    return Sync(tmp_path)


def test_a_first_sync_passes_everything_and_keeps_only_the_last_window(sync: Sync) -> None:
    batches = [[record("a", 0), record("b", 3)], [record("c", 6), record("d", 9, 30)]]

    assert sync(*batches) == ["a", "b", "c", "d"]
    assert sync.window() == {
        "c": record("c", 6)["modifiedtime"],
        "d": record("d", 9, 30)["modifiedtime"],
    }


def test_records_seen_with_the_same_cursor_are_dropped_in_the_next_sync(sync: Sync) -> None:
    sync([record("a", 0), record("b", 3), record("c", 6)])

    passed = sync([record("b", 3), record("c", 6), record("c2", 6), record("b", 7)])

    assert passed == ["c2", "b"]
    assert list(sync.window()) == ["c", "c2", "b"]


def test_single_records_empty_batches_and_records_without_a_cursor(sync: Sync) -> None:
    sync(record("a", 0))
    no_cursor = {"id": "n", "modifiedtime": None}

    assert sync(record("a", 0), [], [no_cursor, record("a", 0)], record("e", 1)) == ["n", "e"]
    assert "n" not in sync.window()


def test_a_dropped_batch_is_filtered_out_entirely(sync: Sync) -> None:
    sync([record("a", 0), record("b", 1)])

    assert sync([record("a", 0), record("b", 1)], [record("z", 2)]) == ["z"]


def test_the_same_cursor_with_other_content_passes(sync: Sync) -> None:
    sync([record("a", 0), {**record("b", 3), "name": "first"}])

    passed = sync([record("a", 0), {**record("b", 3), "name": "second"}])

    assert passed == ["b"]
    assert sync([{**record("b", 3), "name": "second"}]) == []


def test_only_records_still_in_the_window_after_their_page_are_hashed(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    digest = recent.content_digest

    def counting(item: dict[str, Any]) -> str:
        hashed.append(item["id"])
        return digest(item)

    monkeypatch.setattr(recent, "content_digest", counting)
    spread = [record(f"r{minute}", minute) for minute in range(0, 60, 6)]

    sync(spread[:5], spread[5:])

    assert hashed == ["r24", "r54"]  # each page's last: the others left the window with it
    assert all(len(entry[1]) == 16 for entry in sync.entries().values())


def test_entries_kept_before_digests_load_the_record_once_more(sync: Sync) -> None:
    @dlt.resource(name="things")
    def earlier_version() -> Any:
        dlt.current.resource_state()[STATE_KEY] = {"a": record("a", 0)["modifiedtime"]}
        yield {"id": "x"}

    sync.pipeline.extract(earlier_version())

    assert sync([record("a", 0)]) == ["a"]
    assert sync([record("a", 0)]) == []


def test_a_cursor_beyond_the_crms_present_does_not_empty_the_window(sync: Sync) -> None:
    sync.clock = CrmClock(local=lambda: datetime(2024, 1, 1, 10, 4, tzinfo=UTC))
    ahead = {"id": "z", "modifiedtime": "2100-01-01T00:00:00Z"}

    sync([record("a", 0), record("b", 3), ahead])

    assert sync.window() == {
        "a": record("a", 0)["modifiedtime"],
        "b": record("b", 3)["modifiedtime"],
        "z": ahead["modifiedtime"],
    }
    assert sync([record("a", 0), record("b", 3)]) == []
