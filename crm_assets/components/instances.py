"""What each CRM instance of a code location writes to and reads from, and that none share it.

Dagster itself refuses two instances with one key prefix (their asset keys and names would
be the same). What it cannot see is the warehouse and the CRM behind them: two instances
writing one dataset would write the same tables (a sweep of one would then mark the other's
records deleted), and two reading one CRM's token would each pace themselves to the whole
rate limit. Each instance therefore states its identity in its assets' definition metadata
(``crm/instance``, also shown in the UI), and the code location checks them once loaded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from dagster import Definitions

INSTANCE_KEY = "crm/instance"
"""Definition metadata of every CRM asset: the instance it belongs to."""


class InstancesCollideError(ValueError):
    """Two CRM instances of the code location would share a dataset or a CRM."""


@dataclass(frozen=True)
class Instance:
    """What one CRM instance is: where it writes, what it reads, where it is defined."""

    key_prefix: str
    dataset: str
    destination: str
    duckdb_path: str
    base_url_env: str
    access_token_env: str
    defined_in: str

    def as_json(self) -> dict[str, str]:
        """The instance as definition metadata."""
        return asdict(self)

    def describe(self) -> str:
        """How an error names this instance: its file and its key prefix."""
        where = f"{self.defined_in} " if self.defined_in else ""
        return f"{where}(key_prefix {self.key_prefix})"

    def clash(self, other: Instance) -> str | None:
        """What this instance and ``other`` would share, if anything."""
        same_file = self.destination != "duckdb" or self.duckdb_path == other.duckdb_path
        if self.destination == other.destination and self.dataset == other.dataset and same_file:
            return f"write the dataset {self.dataset!r}: give each its own `dataset`"
        if self.access_token_env == other.access_token_env:
            return (
                f"read the token in {self.access_token_env}, and would each pace itself to "
                "the CRM's whole rate limit: give each its own `access_token_env`"
            )
        if self.base_url_env == other.base_url_env:
            return f"read the CRM at {self.base_url_env}: give each its own `base_url_env`"
        return None


def instances_of(defs: Definitions) -> list[Instance]:
    """The CRM instances whose assets ``defs`` holds, one per key prefix."""
    found: dict[str, Instance] = {}
    for node in defs.resolve_asset_graph().asset_nodes:
        value: Any = node.metadata.get(INSTANCE_KEY)
        if value is not None:
            instance = Instance(**value.value)
            found[instance.key_prefix] = instance
    return list(found.values())


def check_instances_apart(instances: Iterable[Instance]) -> None:
    """Refuse instances that would share a dataset or a CRM.

    Raises:
        InstancesCollideError: Naming both instances and what they would share.
    """
    for first, second in itertools.combinations(instances, 2):
        clash = first.clash(second)
        if clash:
            raise InstancesCollideError(
                f"the CRM instances {first.describe()} and {second.describe()} would both {clash}"
            )
