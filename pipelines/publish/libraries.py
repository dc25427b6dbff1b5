"""What a build ran on: the versions of Python and of the libraries and engines that shape the data,
recorded in the manifest and card so that two datasets that differ can be traced to their stacks."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

# The distributions whose version can change a published byte: the store, the shards, the policy's
# samples, the trainer, and the live engines.
LIBRARIES = (
    "actforge",
    "torch",
    "transformers",
    "trl",
    "tokenizers",
    "duckdb",
    "pyarrow",
    "datasets",
    "scienceworld",
    "textworld-express",
)


def library_versions() -> dict[str, str]:
    """Python's version and each library's installed version ("not installed" where absent)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
