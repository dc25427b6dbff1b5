"""Prefect flows and the `actforge` CLI: orchestration only, the data logic lives in `pipelines`."""
