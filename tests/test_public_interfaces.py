"""The code uses Dagster's and dlt's public modules; dlt's others only through one module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crm_assets", "crm_sandbox", "scripts")
DLT_INTERNALS = ROOT / "crm_assets" / "sources" / "crm" / "dlt_internals.py"

DLT_PUBLIC = frozenset(
    {
        "dlt",
        "dlt.sources",
        "dlt.destinations",
        "dlt.sources.rest_api",
        "dlt.sources.rest_api.typing",
        "dlt.sources.helpers.requests",
        "dlt.sources.helpers.rest_client.auth",
        "dlt.sources.helpers.rest_client.paginators",
    }
)
"""The dlt modules its documentation names for sources, REST APIs and destinations."""


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports from, by name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_dlt_modules_beyond_the_documented_ones_come_through_dlt_internals() -> None:
    undocumented = {
        str(path.relative_to(ROOT)): sorted(dlt_modules(path) - DLT_PUBLIC) for path in sources()
    }

    assert undocumented.pop(str(DLT_INTERNALS.relative_to(ROOT))), "the internals module"
    assert {path: modules for path, modules in undocumented.items() if modules} == {}


def test_no_private_dagster_module_is_imported() -> None:
    everything = [*sources(), *sorted((ROOT / "tests").rglob("*.py"))]
    private = {
        str(path.relative_to(ROOT)): sorted(
            module for module in imported_modules(path) if module.startswith("dagster._")
        )
        for path in everything
    }

    assert {path: modules for path, modules in private.items() if modules} == {}


def dlt_modules(path: Path) -> set[str]:
    return {
        module for module in imported_modules(path) if module == "dlt" or module.startswith("dlt.")
    }
