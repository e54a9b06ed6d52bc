"""Names every dlt resource as a Dagster asset: ``<prefix>/<resource>`` in group ``<prefix>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from crm_assets.constants import DEFAULT_NAMES
from crm_assets.naming import CrmNames
from crm_assets.sources.crm import RESOURCES

_DESCRIPTIONS = {
    resource.name: f"{resource.description} Read from `{resource.path}`, merged by `id`."
    for resource in RESOURCES
}


class CrmDltTranslator(DagsterDltTranslator):
    """Asset keys ``<prefix>/<resource>``, group ``<prefix>``, no upstream dependencies.

    Args:
        names: The CRM's names (its key prefix).
        freshness_policy: The policy every CRM asset carries.
        automation_condition: When Dagster's automation launches a sync of an asset.
        metadata: Definition metadata every asset carries (which CRM it is, where it goes).
    """

    def __init__(
        self,
        names: CrmNames = DEFAULT_NAMES,
        freshness_policy: FreshnessPolicy | None = None,
        automation_condition: AutomationCondition[AssetKey] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.names = names
        self.freshness_policy = freshness_policy
        self.automation_condition = automation_condition
        self.metadata = dict(metadata or {})

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        """Adjust dagster-dlt's default spec; kinds stay ``dlt`` plus the destination."""
        name = data.resource.name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=AssetKey([self.names.prefix, name]),
                group_name=self.names.group,
                description=_DESCRIPTIONS.get(name, f"CRM resource {name}."),
                deps=[],
                freshness_policy=self.freshness_policy,
                automation_condition=self.automation_condition,
            )
            .merge_attributes(metadata=self.metadata)
        )
