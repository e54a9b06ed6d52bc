"""Backfill windows: ``start <= cursor < end`` on ISO-8601 UTC timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""The contract's timestamp format; window bounds are normalised to it so that they compare
with records' cursor values."""


def parse_moment(text: str, name: str) -> datetime:
    """An aware UTC datetime from ISO-8601 text (naive means UTC).

    Raises:
        ValueError: Naming ``name`` if the text is not ISO-8601.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO-8601 timestamp, got {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_moment(moment: datetime) -> str:
    """``moment`` in the contract's format."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class Window:
    """Records with ``start <= cursor < end``.

    A window sync filters on the server from ``start``, stops paging once past ``end``
    (records come ordered by the cursor), and leaves the incremental cursor untouched.
    """

    start: str
    end: str

    @classmethod
    def between(cls, start: datetime, end: datetime) -> Window:
        """A window between two aware datetimes.

        Raises:
            ValueError: ``end`` is not after ``start``.
        """
        if end <= start:
            raise ValueError(
                f"window_end ({format_moment(end)}) must be after window_start "
                f"({format_moment(start)})"
            )
        return cls(format_moment(start), format_moment(end))

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        """A window from ISO-8601 bounds, normalised to the contract's format."""
        return cls.between(parse_moment(start, "window_start"), parse_moment(end, "window_end"))
