"""The layering rule (docs/architecture.md), held by tools/imports.py: no import cycle between
packages (`zkml`, `media`, each `agents.*` subpackage), and no lower layer importing a higher."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Each package's layer: a package may import only packages of a lower layer.
LAYERS = {
    "agents": 0,
    "media": 0,
    "agents.core": 0,
    "zkml": 0,
    "agents.runtime": 1,
    "agents.storage": 1,
    "agents.deploy": 1,
    "agents.models": 2,
    "agents.daemons": 3,
    "agents.api": 3,
    "agents.app": 4,
}


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("proofmint_imports", ROOT / "tools" / "imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_no_cycles_between_packages(tool: ModuleType, capsys: pytest.CaptureFixture[str]):
    assert tool.main(["--root", str(ROOT)]) == 0
    assert "no cycles between packages" in capsys.readouterr().out


def test_every_import_goes_down_a_layer(tool: ModuleType):
    graph = tool.package_graph(ROOT)
    assert set(graph) <= set(LAYERS), f"a new package needs a layer here: {sorted(set(graph) - set(LAYERS))}"
    upward = sorted(
        f"{source} -> {dest}" for source, targets in graph.items() for dest in targets if LAYERS[dest] >= LAYERS[source]
    )
    assert upward == [], upward


def test_the_top_level_packages_import_one_way(tool: ModuleType):
    top = tool.top_level_graph(tool.package_graph(ROOT))
    assert top["zkml"] == set() and top["media"] == set(), top
    assert tool.cycles(top) == []


def test_the_tool_finds_a_cycle_between_top_level_packages(
    tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _package(
        tmp_path,
        {
            "agents/__init__.py": "",
            "agents/daemons/__init__.py": "",
            "agents/daemons/prove.py": "import zkml.pipeline\n",
            "agents/core/__init__.py": "",
            "agents/core/errors.py": "",
            "zkml/__init__.py": "",
            "zkml/pipeline.py": "from agents.core.errors import x\n",
            "media/__init__.py": "",
        },
    )
    assert tool.main(["--root", str(tmp_path)]) == 1
    assert "CYCLE: agents <-> zkml" in capsys.readouterr().out


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_tool_finds_a_cycle_hidden_in_a_function(
    tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _package(
        tmp_path,
        {
            "agents/__init__.py": "",
            "agents/core/__init__.py": "",
            "agents/core/errors.py": "def late():\n    from agents.api import app\n",
            "agents/api/__init__.py": "",
            "agents/api/app.py": "from ..core import errors\n",
            "zkml/__init__.py": "",
            "media/__init__.py": "",
        },
    )
    assert tool.main(["--root", str(tmp_path), "--modules"]) == 1
    out = capsys.readouterr().out
    assert "CYCLE: agents.api <-> agents.core" in out
    assert "agents.core.errors -> agents.api.app" in out and "agents.api.app -> agents.core.errors" in out
