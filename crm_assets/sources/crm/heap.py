"""Giving the C heap that fetching leaves free back to the operating system (glibc only).

Pages arrive in up to 32 fetching threads, each allocating in its own glibc arena, and are
freed by the thread that extracts them. Long and short-lived blocks interleave there, the
arenas keep the free space between them, and without trimming a sync's resident memory
grows with its length, mostly free blocks. ``malloc_trim`` returns the free pages;
elsewhere than glibc (macOS, musl) there is nothing to call and nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

TRIM_EVERY_PAGES = 200
"""Pages handed to dlt between two trims: often enough to bound the arenas, rarely enough
that the trims (a few milliseconds each) cost nothing measurable."""


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim`` (glibc), looked up once in the loaded symbols."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrimmer:
    """Trims the C heap once every ``every_pages`` pages extracted.

    Args:
        every_pages: Pages between two trims.

    Attributes:
        trims: Times the heap was due for a trim (trimmed where the C library can).
    """

    def __init__(self, every_pages: int = TRIM_EVERY_PAGES) -> None:
        if every_pages < 1:
            raise ValueError(f"every_pages must be at least 1, got {every_pages}")
        self.every_pages = every_pages
        self.trims = 0
        self._pages = 0
        self._trim = _malloc_trim()

    @property
    def available(self) -> bool:
        """Whether the C library can trim its heap."""
        return self._trim is not None

    def pages(self, count: int) -> None:
        """Count ``count`` pages handed over; trim if a multiple of ``every_pages`` passed."""
        before = self._pages
        self._pages += count
        if self._pages // self.every_pages == before // self.every_pages:
            return
        self.trims += 1
        if self._trim is not None:
            self._trim(0)
