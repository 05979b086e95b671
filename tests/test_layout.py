"""The package's layout: how its modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import automl.kernels
import pytest

import automl


def test_no_import_cycles_between_modules():
    """No module imports itself through others (imports inside functions count)."""
    import networkx as nx

    grimp = pytest.importorskip("grimp")  # installed with import-linter

    graph = grimp.build_graph("automl", cache_dir=None)
    edges = [(m, i) for m in graph.modules for i in graph.find_modules_directly_imported_by(m)]
    cycles = [sorted(c) for c in nx.strongly_connected_components(nx.DiGraph(edges)) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles}"


ROOT = Path(automl.__file__).parent
KERNELS = Path(automl.kernels.__file__).parent


def _modules(folder: Path):
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def test_the_package_root_holds_only_public_names_errors_and_startup():
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(modules) <= 5, modules  # __init__.py and at most four more
    assert {"__init__.py", "errors.py"} <= set(modules)


def test_no_module_shares_a_name_with_a_folder_beside_it():
    for folder in [ROOT, *[p for p in ROOT.rglob("*") if p.is_dir()]]:
        names = {p.stem for p in folder.glob("*.py")}
        clashes = {p.name for p in folder.iterdir() if p.is_dir()} & names
        assert not clashes, f"{folder}: {clashes}"


def test_no_module_is_over_450_lines():
    sizes = {str(p): len(p.read_text().splitlines()) for p in _modules(ROOT) + _modules(KERNELS)}
    assert not {path: n for path, n in sizes.items() if n > 450}


def test_the_kernels_import_only_the_graph_the_nb201_codec_and_the_errors():
    allowed = ("automl.kernels", "automl.graph", "automl.nb201", "automl.errors")
    for path in _modules(KERNELS):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("automl")
            ):
                assert node.module.startswith(allowed), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in ("tensorflow", "keras"), path.name


def test_formatting_is_left_to_ruff():
    """Hand formatting (a `fmt: skip` marker) only where a table reads better."""
    tree = ROOT.parent
    if not (tree / "tests").is_dir():
        pytest.skip("needs the source tree")
    folders = ("automl", "kernels", "tests", "benchmarks", "examples")
    files = [p for folder in folders for p in _modules(tree / folder)]
    marker = "# fmt" + ": skip"
    assert sum(p.read_text().count(marker) for p in files) <= 10
