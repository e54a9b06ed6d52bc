"""Names every dlt resource as a Dagster asset: ``crm/<resource>`` in group ``crm``."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from crm_assets.constants import GROUP_NAME, KEY_PREFIX
from crm_assets.sources.crm import RESOURCES

_DESCRIPTIONS = {
    resource.name: f"{resource.description} Read from `{resource.path}`, merged by `id`."
    for resource in RESOURCES
}


class CrmDltTranslator(DagsterDltTranslator):
    """Asset keys ``crm/<resource>``, group ``crm``, no upstream dependencies.

    Args:
        freshness_policy: The policy every CRM asset carries.
        automation_condition: When Dagster's automation launches a sync of an asset.
    """

    def __init__(
        self,
        freshness_policy: FreshnessPolicy | None = None,
        automation_condition: AutomationCondition[AssetKey] | None = None,
    ) -> None:
        self.freshness_policy = freshness_policy
        self.automation_condition = automation_condition

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        """Adjust dagster-dlt's default spec; kinds stay ``dlt`` plus the destination."""
        name = data.resource.name
        return (
            super()
            .get_asset_spec(data)
            .replace_attributes(
                key=AssetKey([KEY_PREFIX, name]),
                group_name=GROUP_NAME,
                description=_DESCRIPTIONS.get(name, f"CRM resource {name}."),
                deps=[],
                freshness_policy=self.freshness_policy,
                automation_condition=self.automation_condition,
            )
        )
