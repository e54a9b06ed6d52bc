"""``CrmSync``: one CRM synced into a warehouse, as a dg Component with a ``defs.yaml``.

Each instance builds everything one CRM has: its assets (one per CRM resource, daily
partitions), their checks, the sync job, its schedules, the automation sensor and its
resources. Every name derives from ``key_prefix`` (``naming``), so instances never collide;
the default prefix ``crm`` gives the names this location always had.

An attribute left out follows the ``CRM_*`` variable that sets it today, so the default
instance, with no attributes at all, is configured exactly as before. A value given in
``defs.yaml`` is checked as the variable would be and wins over it; a bad one fails the
load naming the file, the instance and the attribute. The URL and token are never in the
file: it names the variables that hold them, read when a run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
from pydantic import Field

from crm_assets.assets import build_crm_assets
from crm_assets.automation import build_automation_sensor, sync_condition
from crm_assets.checks import build_crm_checks
from crm_assets.components.instances import INSTANCE_KEY, Instance
from crm_assets.naming import DEFAULT_PREFIX, CrmNames
from crm_assets.resources import crm_resources
from crm_assets.schedules import build_sweep_schedule, build_sync_schedule
from crm_assets.settings import InvalidSettingError, LocationSettings
from crm_assets.sources.crm import RESOURCES

ResourceName = Literal[
    "accounts",
    "contacts",
    "opportunities",
    "documents",
    "campaigns",
    "cases",
    "activities",
    "opportunity_histories",
    "opportunity_lines",
]
"""The nine resources of the seed."""

VariableName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
"""The name of an environment variable (upper case), never its value."""

ATTRIBUTE_VARIABLES: dict[str, str] = {
    "destination": "CRM_DESTINATION",
    "dataset": "CRM_DATASET",
    "duckdb_path": "CRM_DUCKDB_PATH",
    "sync_cron": "CRM_SYNC_CRON",
    "sweep_cron": "CRM_SWEEP_CRON",
    "freshness_warn_minutes": "CRM_FRESHNESS_WARN_MINUTES",
    "freshness_fail_minutes": "CRM_FRESHNESS_FAIL_MINUTES",
    "deletes": "CRM_DELETES",
    "sweep_max_share": "CRM_SWEEP_MAX_SHARE",
    "history_start": "CRM_HISTORY_START",
    "sync_start": "CRM_SYNC_START",
    "reconcile_days": "CRM_RECONCILE_DAYS",
    "reconcile_cron": "CRM_RECONCILE_CRON",
    "backfill_window_days": "CRM_BACKFILL_WINDOW_DAYS",
}
"""Each attribute, and the variable that sets it when the attribute is left out."""

OWN_VARIABLES = ("CRM_DATASET", "CRM_DUCKDB_PATH")
"""Variables of the default CRM alone: another instance's dataset and DuckDB file follow
from its key prefix unless given."""


class CrmSync(dg.Component, dg.Model, dg.Resolvable):
    """One CRM synced into a warehouse.

    Its resources become daily-partitioned assets with checks, a sync job, an hourly
    schedule, a weekly deletion sweep, automation and backfills.
    """

    key_prefix: str = Field(
        default=DEFAULT_PREFIX,
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="First part of every asset key and of every name of this CRM.",
    )
    base_url_env: VariableName = Field(
        default="CRM_BASE_URL", description="The variable holding the CRM's root URL."
    )
    access_token_env: VariableName = Field(
        default="CRM_ACCESS_TOKEN", description="The variable holding the CRM's token."
    )
    resources: list[ResourceName] | None = Field(
        default=None, description="The CRM resources to sync; all nine if left out."
    )
    dataset: str | None = Field(
        default=None, description="Dataset (schema); the key prefix for other CRMs."
    )
    destination: str | None = Field(default=None, description="Any dlt destination.")
    duckdb_path: str | None = Field(default=None, description="DuckDB file (duckdb only).")
    sync_cron: str | None = Field(default=None, description="The sync schedule (UTC).")
    sweep_cron: str | None = Field(default=None, description="The deletion sweep (UTC).")
    freshness_warn_minutes: int | None = Field(default=None, ge=1)
    freshness_fail_minutes: int | None = Field(default=None, ge=1)
    deletes: Literal["soft", "hard", "off"] | None = None
    sweep_max_share: float | None = Field(default=None, gt=0, le=1)
    history_start: str | None = Field(default=None, description="The first daily partition.")
    sync_start: str | None = None
    reconcile_days: int | None = Field(default=None, ge=1)
    reconcile_cron: str | None = None
    backfill_window_days: int | None = Field(default=None, ge=1)

    @property
    def names(self) -> CrmNames:
        """Every name of this CRM's definitions."""
        return CrmNames(self.key_prefix)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The CRM's definitions, from its attributes and the ``CRM_*`` variables."""
        file = context.path / "defs.yaml" if context.path.is_dir() else context.path
        return self.definitions(os.environ, file)

    def definitions(
        self, environ: Mapping[str, str] | None = None, defined_in: Path | None = None
    ) -> dg.Definitions:
        """The CRM's definitions for an environment (``os.environ`` by default).

        Raises:
            InvalidSettingError: Naming the attribute (and ``defined_in``) or the variable
                with a bad value.
        """
        environ = os.environ if environ is None else environ
        env = self._environment(environ)
        try:
            settings = LocationSettings.from_env(env, self.base_url_env)
        except InvalidSettingError as error:
            raise self._located(error, defined_in) from error
        names = self.names
        instance = Instance(
            key_prefix=names.prefix,
            dataset=settings.dataset,
            destination=settings.destination,
            duckdb_path=str(Path(settings.duckdb_path).expanduser().resolve()),
            base_url_env=self.base_url_env,
            access_token_env=self.access_token_env,
            defined_in=str(defined_in) if defined_in else "",
        )
        return _crm_definitions(
            settings,
            names,
            [resource for resource in RESOURCES if resource.name in self._resource_names()],
            crm_resources(
                names, environ, self._given(settings), self.base_url_env, self.access_token_env
            ),
            {INSTANCE_KEY: dg.MetadataValue.json(instance.as_json())},
        )

    def _resource_names(self) -> set[str]:
        if self.resources is None:
            return {resource.name for resource in RESOURCES}
        return set(self.resources)

    def _attributes(self) -> dict[str, Any]:
        """The attributes given in ``defs.yaml`` that stand for a variable."""
        return {
            attribute: value
            for attribute in ATTRIBUTE_VARIABLES
            if (value := getattr(self, attribute)) is not None
        }

    def _environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables as this instance sees them: its attributes in place of theirs."""
        env = dict(environ)
        if not self.names.is_default:
            for variable in OWN_VARIABLES:
                env.pop(variable, None)
            env["CRM_DATASET"] = self.key_prefix
            env["CRM_DUCKDB_PATH"] = f"data/{self.key_prefix}_warehouse.duckdb"
        for attribute, value in self._attributes().items():
            env[ATTRIBUTE_VARIABLES[attribute]] = str(value)
        return env

    def _given(self, settings: LocationSettings) -> dict[str, Any]:
        """Warehouse fields that no variable may override: given, or this CRM's own."""
        given: dict[str, Any] = {
            field: value
            for field in ("destination", "dataset", "duckdb_path", "deletes", "sync_start")
            if (value := getattr(self, field)) is not None
        }
        if self.sweep_max_share is not None:
            given["sweep_max_share"] = str(self.sweep_max_share)
        if not self.names.is_default:
            given.setdefault("dataset", settings.dataset)
            given.setdefault("duckdb_path", settings.duckdb_path)
        return given

    def _located(self, error: InvalidSettingError, defined_in: Path | None) -> InvalidSettingError:
        """The error naming the file, the instance and the attribute that set the value."""
        attribute = {variable: name for name, variable in ATTRIBUTE_VARIABLES.items()}.get(
            error.variable
        )
        if attribute is None or attribute not in self._attributes():
            return error
        where = f"{defined_in} " if defined_in else ""
        place = f"{where}(key_prefix {self.key_prefix}): attributes.{attribute}"
        problem = str(error).removeprefix(f"{error.variable}: ")
        return InvalidSettingError(
            place, problem.replace(error.variable, f"attributes.{attribute}")
        )


def _crm_definitions(
    settings: LocationSettings,
    names: CrmNames,
    resources: list[Any],
    resource_defs: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> dg.Definitions:
    """One CRM's assets, checks, job, schedules, sensor and resources."""
    partitions = settings.partitions
    assets = build_crm_assets(
        settings.destination,
        partitions,
        settings.backfill_policy,
        settings.freshness_policy,
        sync_condition(settings.reconcile_cron, settings.reconcile_days),
        names,
        resources,
        metadata,
    )
    job = dg.define_asset_job(
        names.job,
        selection=dg.AssetSelection.groups(names.group),
        description=(
            f"Sync the {names.prefix} CRM's partitions into the warehouse (all its assets "
            "unless a subset is given): a day of records' modifiedtime each; today's from the "
            "schedule is the incremental sync."
        ),
    )
    schedules = [build_sync_schedule(settings.sync_cron, partitions, names)]
    if settings.deletes != "off":
        schedules.append(build_sweep_schedule(settings.sweep_cron, partitions, names))
    return dg.Definitions(
        assets=[assets],
        asset_checks=[build_crm_checks(assets.keys, names)],
        jobs=[job],
        schedules=schedules,
        sensors=[build_automation_sensor(names)],
        resources=resource_defs,
        executor=dg.in_process_executor,
    )
