"""Timestamp fields parsed at extraction; anything that is not a full timestamp left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_assets.sources.crm.source import crm_source
from crm_assets.sources.crm.timestamps import AfterIncremental, ParseTimestamps


def test_full_timestamps_become_utc_datetimes_and_the_rest_stays() -> None:
    parse = ParseTimestamps(("modifiedtime", "createdtime", "closedate", "note", "missing"))
    record = {
        "modifiedtime": "2024-05-01T12:00:00.123456Z",
        "createdtime": "2024-05-01T12:00:00",
        "closedate": "2024-05-01",
        "note": "2024-05-01T12:00:00 was a Wednesday",
        "id": "2024-05-01T12:00:00Z",
    }

    parsed = parse(dict(record))

    assert parsed["modifiedtime"] == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert parsed["createdtime"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert {key: parsed[key] for key in ("closedate", "note", "id")} == {
        key: record[key] for key in ("closedate", "note", "id")
    }
    assert "missing" not in parsed


def test_parsing_runs_after_the_incremental_cursor_sees_the_strings() -> None:
    source = crm_source(base_url="https://crm.test", access_token="t")

    for resource in source.resources.values():
        kinds = [type(step).__name__ for step in resource._pipe.steps]
        assert kinds.index("AfterIncremental") > kinds.index("IncrementalResourceWrapper")
        assert isinstance(resource._pipe.steps[-1], AfterIncremental)
