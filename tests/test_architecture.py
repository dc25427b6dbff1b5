"""The import graph, walked with ast: no cycles, no import against docs/ARCHITECTURE.md's layers."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("schemas", "pipelines", "flows", "trainers")


def layers() -> list[str]:
    """The layer names from ARCHITECTURE.md's `layers` block, lowest first."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/ARCHITECTURE.md has no ```layers block"
    return block.group(1).split()


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name without `actforge.` (packages by their folder)."""
    found = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> tuple[set[str], list[str]]:
    """The package's modules that `name` imports (anywhere in the file), and bare-name imports."""
    targets, bare = set(), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            wanted = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
        elif isinstance(node, ast.Import):
            wanted = [a.name for a in node.names]
        else:
            continue
        for full in wanted:
            head = full.split(".")[0]
            if head in FOLDERS:
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}: {full}")
            if head == "actforge" and full.removeprefix("actforge.") in known:
                targets.add(full.removeprefix("actforge."))
    return targets - {name}, bare


def layer_of(name: str, order: list[str]) -> int:
    matches = [layer for layer in order if name == layer or name.startswith(layer + ".")]
    assert matches, f"{name} is in no layer of docs/ARCHITECTURE.md"
    return order.index(max(matches, key=len))


def graph() -> tuple[dict[str, set[str]], list[str]]:
    known = modules()
    edges, bare = {}, []
    for name, path in known.items():
        edges[name], found = imports(name, path, known)
        bare += found
    return edges, bare


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert cycle(graph()[0]) is None, " -> ".join(cycle(graph()[0]) or [])


def test_imports_follow_the_layers() -> None:
    order = layers()
    edges, bare = graph()
    against = [
        f"{source} ({order[layer_of(source, order)]}) imports {target} ({order[layer_of(target, order)]})"
        for source, targets in edges.items()
        for target in targets
        if layer_of(target, order) > layer_of(source, order)
    ]
    assert against == []
    assert bare == [], "import the package as actforge.…"


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    """The two checks on a made-up graph, so a walk that finds nothing is not mistaken for a clean one."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
    order = layers()
    assert layer_of("pipelines.store.ddl", order) > layer_of("pipelines.text.prompts", order)
    assert layer_of("pipelines.config", order) == order.index("pipelines")
    edges, _ = graph()
    assert "schemas.ids" in edges["pipelines.sources.base"]  # the walk sees real imports


def test_pyproject_lists_every_package_folder() -> None:
    """pip installs exactly the folders that are packages, all under the one name `actforge`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        "actforge." + ".".join(p.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("__init__.py")
    }
    assert set(config["packages"]) == folders | {"actforge"}
    assert all(name == "actforge" or name.startswith("actforge.") for name in config["package-dir"])


@pytest.mark.slow  # builds a wheel (about 5 s)
def test_the_wheel_installs_one_package_named_actforge(tmp_path: Path) -> None:
    """What `pip install .` puts in site-packages: `actforge/` (with the folders inside) and its
    dist-info, nothing named `schemas` or `pipelines` beside it."""
    source = tmp_path / "src"
    for name in (*FOLDERS, "actforge"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; {build}", str(tmp_path / "dist")],
        cwd=source, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wheel = tmp_path / "dist" / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"actforge", "actforge-0.1.0.dist-info"}
    inside = ("schemas/columns.py", "pipelines/store/ddl.py", "flows/commands/build.py", "trainers/train.py")
    assert all(f"actforge/{module}" in names for module in inside)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "actforge = actforge.flows.cli:main" in archive.read(entry).decode()


MAX_FUNCTION_LINES, MAX_FILE_LINES = 60, 350  # docs/ARCHITECTURE.md


def test_functions_and_files_stay_small() -> None:
    """A function over 60 lines or a module over 350 has more than one job: split it."""
    too_long = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert not too_long, too_long
