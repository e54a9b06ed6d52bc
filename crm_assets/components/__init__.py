"""Dagster Components of this project: ``CrmSync``, one CRM synced into a warehouse."""

from crm_assets.components.crm_sync import CrmSync

__all__ = ["CrmSync"]
