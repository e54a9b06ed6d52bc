"""The lookback filter: records re-fetched unchanged are dropped, the window is kept in state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from crm_assets.sources.crm.recent import STATE_KEY, SkipUnchanged

LOOKBACK = 300.0


def record(key: str, minute: int, second: int = 0) -> dict[str, Any]:
    """A record whose cursor is 2024-01-01 at 10:minute:second UTC."""
    return {"id": key, "modifiedtime": f"2024-01-01T10:{minute:02d}:{second:02d}Z"}


class Sync:
    """Extracts batches of records through the filter with one dlt pipeline, as syncs do."""

    def __init__(self, tmp_path: Path) -> None:
        self.pipeline = dlt.pipeline("recent_test", pipelines_dir=str(tmp_path))

    def __call__(self, *batches: Any) -> list[str]:
        """The ids that passed the filter, in order."""
        passed: list[str] = []

        @dlt.resource(name="things", primary_key="id")
        def things() -> Any:
            yield from batches

        resource = things().add_filter(SkipUnchanged("things", "modifiedtime", LOOKBACK))
        resource.add_map(lambda item: passed.append(item["id"]) or item)
        self.pipeline.extract(resource)
        return passed

    def window(self) -> dict[str, str]:
        """The (id, cursor) pairs the resource's state holds."""
        state = self.pipeline.state["sources"]["recent_test"]["resources"]["things"]
        return dict(state[STATE_KEY])


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
