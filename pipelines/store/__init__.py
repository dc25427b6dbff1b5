"""The DuckDB store: table definitions, staging and merge, queries, and migration of older stores."""
