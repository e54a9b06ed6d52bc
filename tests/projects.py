"""Throwaway dg projects of CRM instances, loaded as Dagster loads the shipped one."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from dagster import Definitions

from crm_assets.definitions import load_location

DEFINITIONS = """
from pathlib import Path

from dagster import definitions

from crm_assets.definitions import load_location


@definitions
def defs():
    return load_location(Path(__file__).resolve().parent.parent)
"""


def write_project(root: Path, defs_yaml: str, folder: str = "crms") -> tuple[Path, str]:
    """A dg project under ``root`` whose defs folder holds ``defs_yaml`` in ``folder``.

    Returns the project's root and its package, named uniquely so that projects written by
    different tests never share an imported module.
    """
    package = f"crm_project_{uuid.uuid4().hex[:10]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "{package}"\n'
    )
    defs = root / package / "defs" / folder
    defs.mkdir(parents=True)
    for init in (root / package, root / package / "defs"):
        (init / "__init__.py").write_text("")
    (root / package / "definitions.py").write_text(DEFINITIONS)
    (defs / "defs.yaml").write_text(defs_yaml)
    return root, package


def load_project(root: Path) -> Definitions:
    """The project's definitions, its package importable from ``root``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return load_location(root)
