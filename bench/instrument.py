"""What ``steps.py`` and ``memory.py`` share: their arguments and method wrappers."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

STEPS = ("extract", "normalize", "load")
"""dlt's pipeline steps, as methods of ``dlt.Pipeline``."""


def one_sync_arguments(description: str | None) -> argparse.Namespace:
    """``--url`` of a running sandbox and ``--work``, the folder the sync writes to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", type=Path, required=True)
    return parser.parse_args()


def around(owner: Any, name: str, enter: Callable[[], T], leave: Callable[[T], None]) -> None:
    """Replace ``owner.name`` with a wrapper calling ``enter`` before it, ``leave`` after it.

    ``leave`` receives what ``enter`` returned, and runs even when the call raises.
    """
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = enter()
        try:
            return original(*args, **kwargs)
        finally:
            leave(token)

    setattr(owner, name, wrapper)
