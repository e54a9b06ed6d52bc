"""The code location: every CRM instance under ``crm_assets/defs``, checked apart.

``crm_assets/defs/crm/defs.yaml`` holds the default CRM (``crm/<resource>`` assets,
``crm_sync_job``), configured by the ``CRM_*`` variables; a ``defs.yaml`` per further CRM
adds its own (README). Loading reads no secret and makes no request: values bound with
``EnvVar`` are resolved when a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from crm_assets.components.crm_sync import CrmSync
from crm_assets.components.instances import check_instances_apart, instances_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_definitions(environ: Mapping[str, str] | None = None) -> Definitions:
    """The default CRM's definitions for an environment (``os.environ`` by default).

    What the shipped ``defs.yaml`` builds, without the file: for tests and scripts.
    """
    return CrmSync().definitions(environ)


def load_location(project_root: Path = PROJECT_ROOT) -> Definitions:
    """Every CRM instance of a project's defs folder, refused if two would collide."""
    loaded = load_from_defs_folder(path_within_project=project_root)
    check_instances_apart(instances_of(loaded))
    return loaded


@definitions
def defs() -> Definitions:
    """Loaded by Dagster when the code location starts, not when this module is imported."""
    return load_location()
