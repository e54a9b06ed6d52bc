"""dlt settings the sync is tuned for, in effect from whatever folder the code runs.

dlt reads ``.dlt/config.toml`` from the working folder only, so a code server started
elsewhere would lose them (twenty load workers instead of one, compressed intermediate
files, both costing memory or time). They are registered as a
dlt configuration provider consulted after every other one, so environment variables
(``LOAD__WORKERS=20``) and ``.dlt/*.toml`` still override them. The normalize step's
workers are answered when dlt asks, from the work waiting (``normalize_workers``).

dlt's providers serve every pipeline of the process, and a code server may run other dlt
pipelines beside the sync: the provider answers only while one of the sync's own pipelines
is the active one.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, ClassVar

import dlt

from crm_assets.sources.crm.dlt_internals import (
    BaseDocProvider,
    Container,
    DuplicateConfigProviderException,
    PipelineContext,
)
from crm_assets.sources.crm.normalize_workers import normalize_workers

SYNC_DEFAULTS: dict[str, Any] = {
    "load": {"workers": 1},
    "data_writer": {"disable_compression": True},
}
"""Load jobs one at a time: DuckDB writes one file, so parallel jobs gain nothing and each
holds its own buffers; for a server warehouse set ``LOAD__WORKERS=20``. Intermediate files
uncompressed: they live on local disk for seconds, and compressing them is among the
costliest steps of a full load."""


def _active_pipeline_name() -> str | None:
    context = Container()[PipelineContext]
    if not context.is_active():
        return None
    pipeline = context.pipeline()
    return pipeline.pipeline_name if isinstance(pipeline, dlt.Pipeline) else None


class SyncDefaults(BaseDocProvider):
    """``SYNC_DEFAULTS`` as a read-only dlt configuration provider of the named pipelines.

    Attributes:
        pipelines: Names of the pipelines it answers for.
    """

    NAME: ClassVar[str] = "crm-assets sync defaults"

    def __init__(self) -> None:
        super().__init__(copy.deepcopy(SYNC_DEFAULTS))
        self.pipelines: set[str] = set()

    def get_value(
        self, key: str, hint: type[Any], pipeline_name: str | None, *sections: str
    ) -> tuple[Any | None, str]:
        """A default's value; ``normalize.workers`` from the running pipeline's pending work.

        Nothing unless the active pipeline is one of ``pipelines``. dlt asks every provider
        under the pipeline's name before asking any without it, so this answers only the
        unnamed lookup: ``NORMALIZE__WORKERS`` still comes first.
        """
        if _active_pipeline_name() not in self.pipelines:
            return None, self.get_key_name(key, *sections)
        if key == "workers" and sections[-1:] == ("normalize",) and not pipeline_name:
            workers = normalize_workers()
            if workers is not None:
                return workers, self.get_key_name(key, *sections)
        return super().get_value(key, hint, pipeline_name, *sections)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """How dlt lists this provider."""
        return self.NAME

    @property
    def supports_secrets(self) -> bool:
        """Never: it holds no secrets."""
        return False

    @property
    def supports_sections(self) -> bool:
        """Keys are looked up under their sections, as in ``config.toml``."""
        return True


_DEFAULTS = SyncDefaults()


def use_sync_defaults(pipeline_name: str) -> None:
    """Give the pipeline ``pipeline_name`` the sync's defaults (the provider registered once).

    dlt's own providers stay first.
    """
    _DEFAULTS.pipelines.add(pipeline_name)
    with contextlib.suppress(DuplicateConfigProviderException):
        dlt.config.register_provider(_DEFAULTS)
