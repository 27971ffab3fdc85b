"""The package's import graph, read from the source (imports inside functions too): every module has its place in
the layers of the design notes (docs/design.md, section 4) and imports only its own layer and those below, and no module
imports a module that imports it back."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fastgmm"

# Top to bottom. A module not listed fails the test: a new file takes its place here.
LAYERS = [
    ("entry points", ["fastgmm", "fastgmm.__main__", "fastgmm._files", "fastgmm._load", "fastgmm._onnx",
                      "fastgmm._plot", "fastgmm._selection", "fastgmm._show_versions", "fastgmm._warmup"]),
    ("estimators", ["fastgmm._base", "fastgmm._bayesian_mixture", "fastgmm._gaussian_mixture"]),
    ("EM driver", ["fastgmm._collapse", "fastgmm._em", "fastgmm._online", "fastgmm._initialisation", "fastgmm._kmeans",
                   "fastgmm._model_file", "fastgmm._progress", "fastgmm._random", "fastgmm._sklearn_interop",
                   "fastgmm._ward"]),
    ("data sources", ["fastgmm.sources", "fastgmm.sources.arrays", "fastgmm.sources.blocks", "fastgmm.sources.chunks",
                      "fastgmm.sources.dask_arrays", "fastgmm.sources.init_sample", "fastgmm.sources.with_missing",
                      "fastgmm._validation"]),
    ("backend selection", ["fastgmm._auto_backend", "fastgmm._backends", "fastgmm._background_compile"]),
    ("kernels", ["fastgmm.kernels", "fastgmm.kernels._constants", "fastgmm.kernels._layouts", "fastgmm.kernels._passes",
                 "fastgmm.kernels.cython_", "fastgmm.kernels.numba_", "fastgmm.kernels.numpy_", "fastgmm._missing",
                 "fastgmm._threads"]),
    ("model arrays", ["fastgmm._parameters", "fastgmm._variational", "fastgmm._version"]),
]

# Cycles allowed for now: none. A cycle found fails the test, and so does an entry here that is no cycle any more.
KNOWN_CYCLES = []


def _modules(package=PACKAGE):
    """``{dotted module name: path}`` of every module under ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph(modules=None):
    """``{module: {imported fastgmm module: line}}`` of every import statement, wherever it stands."""
    modules = _modules() if modules is None else modules
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph[name] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from . import _x` imports the module _x; `from ._x import y` the module _x.
                targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                           for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    edges.setdefault(target, node.lineno)
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    placed = [name for _, names in LAYERS for name in names]
    assert len(placed) == len(set(placed)), "a module is in two layers"
    assert sorted(placed) == sorted(_modules())


def test_imports_go_down_the_layers():
    layer = {name: depth for depth, (_, names) in enumerate(LAYERS) for name in names}
    upward = [f"{module} (line {line}, {LAYERS[layer[module]][0]}) imports {target} ({LAYERS[layer[target]][0]})"
              for module, edges in import_graph().items() for target, line in edges.items()
              if layer[target] < layer[module]]
    assert not upward, "\n".join(upward)


def test_no_module_imports_a_module_that_imports_it_back():
    found = cycles(import_graph())
    assert sorted(map(sorted, found)) == sorted(map(sorted, KNOWN_CYCLES))


@pytest.mark.parametrize("source, expected", [
    ("from ._b import x\n", {"fastgmm._b"}),
    ("def f():\n    from . import _b\n", {"fastgmm._b"}),
    ("import fastgmm\n", {"fastgmm"}),
    ("from .. import _b\n", {"fastgmm._b"}),
])
def test_the_graph_sees_every_kind_of_import(tmp_path, source, expected):
    """The reader of the graph itself: top-level, function-level, absolute and relative imports all count."""
    (tmp_path / "fastgmm" / "sub").mkdir(parents=True)
    for name in ("__init__.py", "_b.py", "sub/__init__.py"):
        (tmp_path / "fastgmm" / name).write_text("")
    where = tmp_path / "fastgmm" / ("sub/_a.py" if source.startswith("from ..") else "_a.py")
    where.write_text(source)
    a = "fastgmm.sub._a" if source.startswith("from ..") else "fastgmm._a"
    assert set(import_graph(_modules(tmp_path / "fastgmm"))[a]) == expected


def test_the_estimator_never_asks_what_the_data_are():
    """The estimator module names no data-source class, no Chunks and nothing of dask in its code (its docstrings
    may say what X can be): ``fastgmm.sources`` is the only code that asks."""
    tree = ast.parse((PACKAGE / "_gaussian_mixture.py").read_text())
    named = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    named |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            named |= {alias.name for alias in node.names} | {getattr(node, "module", None) or ""}
    forbidden = {"Chunks", "ArraySource", "ChunkSource", "DaskSource", "is_dask_collection", "dask"}
    assert not {name for name in named if name in forbidden or "dask" in name.lower()}, named & forbidden
