"""The layers of ARCHITECTURE.md, checked against the package's own imports: no package imports one above
it, so the import graph has no loop between packages and the data model stands on nothing."""

import ast
import subprocess
import sys
from pathlib import Path

import llmzero

PACKAGE = Path(llmzero.__file__).parent

# Bottom to top. A unit may import units of its own layer listed before it, and any lower layer.
LAYERS = [
    ["atomic", "paths", "config", "tree", "hparams"],  # foundation and the data model
    ["metrics", "tasks", "models"],
    ["state", "strategy"],
    ["agents", "trainers", "executors"],
    ["search"],
    ["reports", "tracking"],
    ["report", "app", "preflight", "cli_errors", "__main__"],
]
RANK = {unit: (i, j) for i, layer in enumerate(LAYERS) for j, unit in enumerate(layer)}


def _imports() -> dict[tuple[str, str], set[str]]:
    """(unit, file) -> llmzero units it imports; a unit is a top-level module or package of llmzero."""
    out: dict[tuple[str, str], set[str]] = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        pkg = parts if f.name == "__init__.py" else parts[:-1]
        if f.name == "__init__.py":
            parts = parts[:-1]
        unit = parts[1] if len(parts) > 1 else "__init__"
        found: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg[: len(pkg) - (node.level - 1)]
                    names = [".".join(base + ([node.module] if node.module else []))]
                else:
                    names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                bits = name.split(".")
                if bits[0] == "llmzero" and len(bits) > 1 and bits[1] != unit:
                    found.add(bits[1])
        out[(unit, str(f.relative_to(PACKAGE.parent)))] = found
    return out


def test_every_unit_has_a_layer():
    units = {u for u, _ in _imports()} - {"__init__"}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to a layer in ARCHITECTURE.md and here"


def test_no_import_runs_up_a_layer():
    upward = [f"{path}: {unit} -> {dep}" for (unit, path), deps in _imports().items() if unit in RANK
              for dep in deps if dep in RANK and RANK[dep] >= RANK[unit]]
    assert upward == []


def test_the_data_model_and_the_backends_load_without_the_search_loop():
    code = ("import sys, llmzero.tree, llmzero.trainers.base, llmzero.agents.base, llmzero.trainers.trl.phase; "
            "bad = sorted(m for m in sys.modules if m.startswith(('llmzero.search', 'llmzero.app', 'llmzero.reports'))"
            " or m in ('torch', 'transformers')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"  # importing the phase entry point's module loads neither torch nor transformers either
