"""The package's architecture as a specification: its import graph has no cycle, no import points up the
declared layer order (docs/architecture.md), and every package says in one line what it holds."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import msqnet

PACKAGE = Path(msqnet.__file__).parent

# Lowest first; a module may import its own layer and the layers below, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("msqnet._version", "msqnet.utils", "msqnet.config_loader", "msqnet.hardware", "msqnet.compiled",
                    "msqnet.precision")),
    ("presets", ("msqnet.presets",)),
    ("metrics", ("msqnet.metrics",)),
    ("data", ("msqnet.data",)),
    ("synthetic benchmark", ("msqnet.synth",)),
    ("network", ("msqnet.models",)),
    ("checkpoints and sharing", ("msqnet.checkpoint",)),
    ("training and evaluation", ("msqnet.engine",)),
    ("inference", ("msqnet.inference",)),
    ("page", ("msqnet.app",)),
    ("command line", ("msqnet.cli",)),
    ("public API", ("msqnet",)),
]


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every module of msqnet."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imports(name: str) -> set[tuple[str, int]]:
    """(imported msqnet module, line) for every import in ``name``, at module top or inside functions alike."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "msqnet"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "msqnet":
                continue
            for alias in node.names:  # `from . import x` imports the module x
                sub = f"{target}.{alias.name}"
                found.add((sub if sub in MODULES else target, node.lineno))
    return {(t, line) for t, line in found if t != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> int:
    """The index in LAYERS of the longest prefix that declares ``name``."""
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    assert best is not None, f"{name}: in no layer of LAYERS; add it to one (and to docs/architecture.md)"
    return best[0]


def test_every_module_is_in_a_declared_layer():
    for name in MODULES:
        _layer(name)


def test_no_import_points_up_the_layer_order():
    upward = [f"{MODULES[a][0].relative_to(PACKAGE.parent)}:{line}: {a} ({LAYERS[_layer(a)][0]}) imports "
              f"{b} ({LAYERS[_layer(b)][0]})"
              for a, targets in GRAPH.items() for b, line in targets if _layer(b) > _layer(a)]
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles = []

    def visit(u: str) -> None:
        state[u] = 1
        path.append(u)
        for v, _ in sorted(GRAPH.get(u, ())):
            if state.get(v) == 1:
                cycles.append(" -> ".join(path[path.index(v):] + [v]))
            elif v not in state:
                visit(v)
        path.pop()
        state[u] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_walk_sees_imports_inside_functions():
    """The walk is the test's eyes: an import inside a function body counts like one at the top."""
    inside = {b for b, _ in GRAPH["msqnet.cli.train"]}
    assert "msqnet.engine.trainer" in inside  # imported in `_run`, not at the top


def test_every_package_has_a_one_line_docstring():
    for name, (path, is_package) in sorted(MODULES.items()):
        if not is_package:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.strip(), f"{name}: no docstring; say in one line what the package holds"
        first = doc.strip().splitlines()[0]
        assert first.endswith(".") and len(first) <= 120, f"{name}: the docstring's first line should be one sentence of at most 120 characters: {first!r}"


def test_model_predict_comes_with_inference_and_says_so_before():
    """The network does not import inference: until :mod:`msqnet.inference` is imported ``model.predict``
    names the import that installs it; after, it is inference's (a fresh interpreter: nothing imported before)."""
    code = (
        "from msqnet.models import MSQNet\n"
        "try:\n"
        "    MSQNet.predict(None, 'clip.mp4')\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
        "import msqnet.inference\n"
        "print(MSQNet.predict.__module__, MSQNet.explain.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = out.stdout.strip().splitlines()[-2:]
    assert before.startswith("model.predict is provided by msqnet.inference: `import msqnet.inference`")
    assert after == "msqnet.inference msqnet.inference"
