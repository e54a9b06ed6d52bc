"""Rows declared unique by id until an id repeats, then deduplicated by dlt, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.schema.typing import TTableSchema

from crm_assets.sources.crm.unique import (
    DECLARED_UNIQUE,
    DEDUPLICATED_HINT,
    NO_VERSION_ORDER,
    SeenKeys,
    UniqueKeys,
)


def test_keys_seen_once_are_no_repeat() -> None:
    seen = SeenKeys()

    assert [seen.add(["a", "b"]), seen.add(["c"]), seen.add([f"k{n}" for n in range(500)])] == [
        False,
        False,
        False,
    ]


def test_a_key_from_an_earlier_batch_is_a_repeat() -> None:
    seen = SeenKeys()
    for batch in range(100):
        assert not seen.add([f"{batch}-{n}" for n in range(10)])

    assert seen.add(["new", "3-7"])


def test_a_key_twice_in_one_batch_is_a_repeat() -> None:
    assert SeenKeys().add(["a", "b", "a"])


class Extract:
    """Extracts batches through the step with one dlt pipeline, as syncs do."""

    def __init__(self, tmp_path: Path) -> None:
        self.pipeline = dlt.pipeline("unique_test", pipelines_dir=str(tmp_path))

    def __call__(self, *batches: list[dict[str, Any]]) -> TTableSchema:
        """The table's schema after extracting ``batches``."""

        @dlt.resource(
            name="things",
            primary_key="id",
            write_disposition=DECLARED_UNIQUE,
            columns={"modified": NO_VERSION_ORDER},
        )
        def things() -> Any:
            yield from batches

        self.pipeline.extract(things().add_step(UniqueKeys("id", "modified")))
        return self.pipeline.default_schema.tables["things"]


@pytest.fixture
def extract(tmp_path: Path) -> Extract:
    return Extract(tmp_path)


def rows(*ids: str) -> list[dict[str, Any]]:
    return [{"id": key, "modified": 1} for key in ids]


def test_a_sync_fetching_each_id_once_stays_declared_unique(extract: Extract) -> None:
    table = extract(rows("a", "b"), rows("c"))

    assert table[DEDUPLICATED_HINT] is True  # type: ignore[typeddict-item]
    assert table["columns"]["modified"].get("dedup_sort") is None


def test_a_repeated_id_withdraws_the_declaration_and_orders_versions_newest_first(
    extract: Extract,
) -> None:
    table = extract(rows("a", "b"), rows("c", "a"), rows("d"))

    assert table[DEDUPLICATED_HINT] is False  # type: ignore[typeddict-item]
    assert table["columns"]["modified"]["dedup_sort"] == "desc"


def test_the_next_sync_without_repeats_is_declared_unique_again(extract: Extract) -> None:
    extract(rows("a", "a"))

    table = extract(rows("a", "b"))

    assert table[DEDUPLICATED_HINT] is True  # type: ignore[typeddict-item]
    assert table["columns"]["modified"].get("dedup_sort") is None


def test_an_item_that_is_not_a_record_is_deduplicated(extract: Extract) -> None:
    table = extract(rows("a"), [{"id": "b", "modified": 1}, "not a record"])  # type: ignore[list-item]

    assert table[DEDUPLICATED_HINT] is False  # type: ignore[typeddict-item]


def test_the_first_repeat_is_reported_once() -> None:
    repeats: list[str] = []
    step = UniqueKeys("id", "modified", on_repeat=lambda: repeats.append("things"))

    for batch in (rows("a", "b"), rows("b"), rows("a"), rows("c")):
        step(batch)

    assert (repeats, step.repeated) == (["things"], True)
