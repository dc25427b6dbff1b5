"""actforge: critique datasets for Agentic Critical Training, and a thin trainer over TRL.

The import package maps onto the repository's top-level folders (`actforge.schemas` is `schemas/`,
and so on; see pyproject.toml's package-dir and docs/ARCHITECTURE.md).
"""
