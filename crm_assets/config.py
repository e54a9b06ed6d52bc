"""Run config of the CRM sync op: a deletion sweep, or not."""

from __future__ import annotations

from dagster import Config
from pydantic import Field


class CrmSyncConfig(Config):
    """Empty for a sync of the run's partitions; ``sweep_deletes`` for a deletion sweep.

    What a run reads follows from its partitions (``partitions``).
    ``{"ops": {"crm_dlt_assets": {"config": {"sweep_deletes": true}}}}`` lists every record
    of the selected resources, merges them, and marks the rows the CRM no longer lists.
    """

    sweep_deletes: bool = Field(
        default=False,
        description=(
            "List every record, merge them, and mark the rows the CRM no longer lists "
            "(CRM_DELETES: soft sets _crm_deleted_at, hard removes the rows)."
        ),
    )
