"""Every part of dlt the project uses that dlt does not document as public, in one place.

dlt documents its sources, paginators, auth, the requests ``Client``, destinations and
configuration providers; the names below come from its modules all the same. A dlt
upgrade that moves one fails here, on import, naming it. One that changes its behaviour is
caught by the equivalence tests, which load the same data the plain way and the fast way and
compare every table:

- Arrow route (``columnar``): dlt's naming helpers, root row-id type, empty-key name, row id
  generator and type inference, and its item steps. Guarded by
  ``tests/test_columnar.py::test_arrow_and_dict_routes_load_the_same_tables``.
- Step placement (``timestamps``, ``columnar``, ``recent``, ``future``, ``sweep``): dlt's
  item step base classes and their ``placement_affinity``, which orders steps around the
  incremental step (1) and the item limit (1.1). Guarded by
  ``tests/sources/crm/test_timestamps.py`` and, for the steps around the incremental one,
  ``tests/test_incremental.py::test_a_record_stamped_in_the_future_does_not_hold_the_cursor_there``.
- DuckDB destination (``crm_assets/duckdb_destination.py``): dlt's DuckDB job client, its
  configuration and ``prepare_load_job_execution``. Guarded by
  ``tests/test_duckdb_destination.py::test_our_duckdb_loads_the_tables_dlts_own_loads``.
- Warehouse SQL (``crm_assets/warehouse_sql.py``): the SQL client and job client base
  classes, schema utilities. Guarded by the sweep and check tests on DuckDB and Postgres.
- Sync defaults (``dlt_defaults``): the document provider base class.
- Normalize workers (``normalize_workers``): the container and the pipeline context, which
  say which pipeline is running (``dlt.current.pipeline()`` would create one). Guarded by
  ``tests/test_normalize_workers.py``.
- Page selector (``settings``): dlt's JSONPath compiler.
- Names only: destination references (``Destination``), ``LoadInfo``, the schema's type
  names and its ``_dlt_id``/``_dlt_load_id`` column names, ``ResourceNameNotAvailable``.

``tests/test_public_interfaces.py`` keeps every other module to dlt's documented modules.
"""

from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import DuplicateConfigProviderException
from dlt.common.configuration.providers.doc import BaseDocProvider
from dlt.common.data_types.type_helpers import PY_TYPE_TO_SC_TYPE, py_type_to_sc_type
from dlt.common.destination import Destination
from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.destination.client import RunnableLoadJob
from dlt.common.exceptions import ResourceNameNotAvailable
from dlt.common.jsonpath import compile_path
from dlt.common.normalizers.json.helpers import (
    get_root_row_id_type,
    normalize_identifier,
    normalize_table_identifier,
)
from dlt.common.normalizers.json.relational import DataItemNormalizer
from dlt.common.normalizers.naming import NamingConvention
from dlt.common.normalizers.utils import generate_dlt_ids
from dlt.common.pipeline import LoadInfo, PipelineContext
from dlt.common.schema.typing import C_DLT_ID, C_DLT_LOAD_ID, TTableSchema, TTableSchemaColumns
from dlt.common.schema.utils import (
    autodetect_sc_type,
    get_first_column_name_with_prop,
    get_nested_tables,
    new_table,
)
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.impl.duckdb.configuration import DuckDbClientConfiguration, DuckDbCredentials
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.destinations.sql_client import SqlClientBase
from dlt.extract.items_transform import ItemTransform, MapItem

EMPTY_KEY_IDENTIFIER: str = DataItemNormalizer.EMPTY_KEY_IDENTIFIER
"""The name dlt's relational normalizer gives a blank key."""

__all__ = [
    "C_DLT_ID",
    "C_DLT_LOAD_ID",
    "EMPTY_KEY_IDENTIFIER",
    "PY_TYPE_TO_SC_TYPE",
    "BaseDocProvider",
    "Container",
    "DatabaseUndefinedRelation",
    "Destination",
    "DestinationCapabilitiesContext",
    "DuckDbClient",
    "DuckDbClientConfiguration",
    "DuckDbCredentials",
    "DuplicateConfigProviderException",
    "ItemTransform",
    "LoadInfo",
    "MapItem",
    "NamingConvention",
    "PipelineContext",
    "ResourceNameNotAvailable",
    "RunnableLoadJob",
    "SqlClientBase",
    "SqlJobClientBase",
    "TTableSchema",
    "TTableSchemaColumns",
    "autodetect_sc_type",
    "compile_path",
    "generate_dlt_ids",
    "get_first_column_name_with_prop",
    "get_nested_tables",
    "get_root_row_id_type",
    "new_table",
    "normalize_identifier",
    "normalize_table_identifier",
    "py_type_to_sc_type",
]
