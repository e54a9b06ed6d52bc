"""Timestamp fields parsed at extraction; anything that is not a full timestamp left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import responses

from crm_assets.sources.crm.timestamps import ParseTimestamps
from tests.sources.crm.conftest import ACCOUNTS_URL, fetch


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


@responses.activate
def test_the_incremental_cursor_sees_the_strings_and_the_records_leave_parsed() -> None:
    records = [
        {"id": f"a{second}", "modifiedtime": f"2024-01-01T00:00:{second:02d}.000000Z"}
        for second in (10, 40, 50)
    ]
    body = orjson.dumps({"list": [{"record": record} for record in records]})
    responses.get(ACCOUNTS_URL, body=body)

    fetched = fetch(initial_cursor="2024-01-01T00:00:30.000000Z", lookback_seconds=0)

    assert [record["id"] for record in fetched] == ["a40", "a50"]  # compared as sent
    assert fetched[-1]["modifiedtime"] == datetime(2024, 1, 1, 0, 0, 50, tzinfo=UTC)
