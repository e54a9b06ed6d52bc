"""Every name one CRM's definitions take, derived from its key prefix.

A code location may sync several CRMs (``crm_assets/defs``: one ``CrmSync`` instance each).
Nothing of one may collide with another's: asset keys, op, job, schedule and sensor names,
resource keys, the warehouse pool, the dlt pipeline (its working folder, its state and its
staging dataset). All of them follow from the instance's key prefix, so distinct prefixes
keep them apart; the default prefix ``crm`` gives the names this location has always had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "crm"
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""Lower-case letters, digits and underscores, starting with a letter: usable as an asset key
part, a Dagster name, a dlt pipeline name and a SQL schema name alike."""


@dataclass(frozen=True)
class CrmNames:
    """The names of one CRM's definitions.

    Attributes:
        prefix: First part of every asset key (``<prefix>/accounts``), and the root of
            every other name.
    """

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.match(self.prefix):
            raise ValueError(
                f"key_prefix {self.prefix!r} must be lower-case letters, digits and "
                "underscores, starting with a letter (at most 40)"
            )

    @property
    def is_default(self) -> bool:
        """Whether these are the names the location had before it synced several CRMs."""
        return self.prefix == DEFAULT_PREFIX

    @property
    def group(self) -> str:
        """The asset group of the CRM's assets."""
        return self.prefix

    @property
    def assets_op(self) -> str:
        """The multi-asset op; its run config (a sweep) is addressed to it."""
        return f"{self.prefix}_dlt_assets"

    @property
    def checks_op(self) -> str:
        """The op of the CRM's asset checks."""
        return f"{self.prefix}_table_checks"

    @property
    def pipeline(self) -> str:
        """The dlt pipeline: its working folder, and its state in the destination."""
        return self.prefix

    @property
    def job(self) -> str:
        """The sync job of the CRM's assets."""
        return f"{self.prefix}_sync_job"

    @property
    def sync_schedule(self) -> str:
        """The schedule of today's incremental sync."""
        return f"{self.prefix}_sync_schedule"

    @property
    def sweep_schedule(self) -> str:
        """The schedule of the weekly deletion sweep."""
        return f"{self.prefix}_sweep_schedule"

    @property
    def automation_sensor(self) -> str:
        """The automation condition sensor of the CRM's assets."""
        return f"{self.prefix}_automation_sensor"

    @property
    def pool(self) -> str:
        """The Dagster pool of every run that writes this CRM's warehouse tables."""
        return f"{self.prefix}_warehouse"

    @property
    def api_resource(self) -> str:
        """Resource key of the CRM API resource (URL and token)."""
        return f"{self.prefix}_api"

    @property
    def warehouse_resource(self) -> str:
        """Resource key of the warehouse resource; ``warehouse`` for the default CRM."""
        return "warehouse" if self.is_default else f"{self.prefix}_warehouse"

    @property
    def dlt_resource(self) -> str:
        """Resource key of dagster-dlt's resource; ``dlt`` for the default CRM."""
        return "dlt" if self.is_default else f"{self.prefix}_dlt"
