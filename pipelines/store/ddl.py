"""DuckDB table definitions from the Arrow schemas: one type mapping, for the store and its migration."""

from __future__ import annotations

import pyarrow as pa

_SCALARS = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN", pa.float64(): "DOUBLE"}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """DuckDB column type for an Arrow type of our schemas."""
    if arrow_type in _SCALARS:
        return _SCALARS[arrow_type]
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in arrow_type)
        return f"STRUCT({fields})"
    raise TypeError(f"no DuckDB type for {arrow_type}")


def columns_ddl(schema: pa.Schema) -> str:
    """The column list of a CREATE TABLE for an Arrow schema."""
    return ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in schema)
