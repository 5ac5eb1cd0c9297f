"""Layers point down and modules import no cycle (the contract is in pyproject.toml, [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in config if c["type"] == "layers"]
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def test_every_top_level_module_has_a_layer():
    # A new package outside the contract would escape it: every ecglit.<name> must be listed.
    top = {p.stem for p in (REPO / "ecglit").iterdir()
           if (p.is_dir() and (p / "__init__.py").is_file()) or (p.suffix == ".py" and p.stem != "__init__")}
    listed = {name.removeprefix("ecglit.") for name in _layers()}
    assert top - listed == set(), f"modules without a layer in pyproject.toml: {sorted(top - listed)}"


def test_layers_contract_is_kept():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_no_import_cycles():
    graph = grimp.build_graph("ecglit", cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported != importer and graph.chain_exists(importer=imported, imported=importer):
                cycles.append(f"{importer} <-> {imported}")
    assert cycles == [], "import cycles: " + "; ".join(cycles)
