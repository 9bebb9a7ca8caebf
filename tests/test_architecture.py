"""The import-layer contract of ARCHITECTURE.md, checked on the package's static import graph (linmeta._imports).

Rules:

1. data flows one way: a module imports only modules of a lower layer (or of its own group);
2. theory never imports the engine, the simulation package, experiments or the CLI, and never draws
   random numbers;
3. the engine never imports experiments, the CLI, the simulation package or the two-layer engine;
4. no experiment imports another experiment;
5. there is no import cycle in the package.

The last test plants a violation in a copy of the package and checks that the contract catches it.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from linmeta import _imports

# lowest first; a module may import modules of strictly lower layers, and modules of its own group
LAYERS = [
    ("foundation", ["linmeta._validate", "linmeta._backend", "linmeta._random", "linmeta._imports", "linmeta._errors",
                    "linmeta.progress", "linmeta.cache", "linmeta.claims", "linmeta._workspace"]),
    ("losses", ["linmeta.losses"]),
    ("tasks", ["linmeta.tasks"]),
    ("models", ["linmeta.models"]),
    ("rule", ["linmeta.rule"]),
    ("theory", ["linmeta.theory*"]),
    ("engine calculus", ["linmeta._factored", "linmeta._chain_rule", "linmeta._*"]),
    ("preconditioners", ["linmeta.preconditioners"]),
    ("inner loop", ["linmeta.inner_loop"]),
    ("reverse pass", ["linmeta.reverse", "linmeta.updating_kfo"]),
    ("stability", ["linmeta.stability"]),
    ("meta-objective", ["linmeta.meta", "linmeta._chunking"]),
    ("training", ["linmeta.train", "linmeta.reptile"]),
    ("facade", ["linmeta"]),
    ("simulation", ["linmeta.sim*", "linmeta.twolayer"]),
    ("experiment framework", ["linmeta.experiments", "linmeta.experiments.base", "linmeta.experiments.registry",
                              "linmeta.experiments.runner", "linmeta.experiments.plotting",
                              "linmeta.experiments.style", "linmeta.experiments.checks"]),
    ("experiments", ["linmeta.experiments.*"]),
    ("cli", ["linmeta.cli", "linmeta.__main__"]),
]
FRAMEWORK = set(LAYERS[-3][1])
ENGINE = ["linmeta._factored", "linmeta._chain_rule", "linmeta.preconditioners", "linmeta.inner_loop", "linmeta.reverse",
          "linmeta.updating_kfo", "linmeta.meta", "linmeta.stability", "linmeta.train", "linmeta.reptile"]
THEORY_MAY_IMPORT = {"linmeta._validate", "linmeta.tasks", "linmeta.models", "linmeta.rule", "linmeta.losses"}
# what drawing random numbers looks like: generator methods and sampler calls (attributes), seed helpers (names)
RANDOM_ATTRS = {"random", "default_rng", "standard_normal", "normal", "uniform", "integers", "choice", "permutation",
                "shuffle", "chisquare", "sample_tasks", "sample_data", "sample_loss", "moments", "meta_batch"}
RANDOM_NAMES = {"default_rng", "Generator", "SeedSequence", "as_generator", "random"}


def _match(module: str, pattern: str) -> bool:
    """``a.b*``: ``a.b`` and its submodules; ``a.b.*``: the submodules only; ``a._*``: names starting ``a._``."""
    if not pattern.endswith("*"):
        return module == pattern
    stem = pattern[:-1]
    if stem.endswith((".", "_")):
        return module.startswith(stem)
    return module == stem or module.startswith(stem + ".")


def layer_of(module: str) -> int:
    """Index of the most specific layer whose patterns match ``module`` (exact names win over patterns)."""
    for i, (_, patterns) in enumerate(LAYERS):
        if module in patterns:
            return i
    for i, (_, patterns) in enumerate(LAYERS):
        if any(p.endswith("*") and _match(module, p) for p in patterns):
            return i
    raise AssertionError(f"{module} is in no layer of the contract: add it to ARCHITECTURE.md and LAYERS")


def violations(graph: dict, files: dict) -> list:
    """Every breach of the contract in an import graph, as readable strings."""
    out = []
    for mod, deps in sorted(graph.items()):
        lm = layer_of(mod)
        for dep in sorted(deps):
            ld = layer_of(dep)
            if ld > lm:
                out.append(f"layering: {mod} ({LAYERS[lm][0]}) imports {dep} ({LAYERS[ld][0]})")
            if mod.startswith("linmeta.theory") and not (dep.startswith("linmeta.theory") or dep in THEORY_MAY_IMPORT):
                out.append(f"theory purity: {mod} imports {dep}")
            if mod in ENGINE and (dep.startswith(("linmeta.experiments", "linmeta.sim")) or dep in
                                  ("linmeta.cli", "linmeta.twolayer", "linmeta")):
                out.append(f"engine: {mod} imports {dep}")
            if (mod.startswith("linmeta.experiments.") and mod not in FRAMEWORK
                    and dep.startswith("linmeta.experiments.") and dep not in FRAMEWORK):
                out.append(f"experiments: {mod} imports experiment {dep}")
    for mod, path in sorted(files.items()):
        if mod.startswith("linmeta.theory"):
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
            attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            bad = sorted((attrs & RANDOM_ATTRS) | (names & RANDOM_NAMES))
            if bad:
                out.append(f"theory purity: {mod} uses random-number names {bad}")
    out += [f"cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return out


def cycles(graph: dict) -> list:
    """One representative cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_every_module_is_in_a_layer():
    for mod in _imports.module_files():
        layer_of(mod)


def test_the_package_keeps_its_import_contract():
    graph, files = _imports.import_graph(), _imports.module_files()
    assert violations(graph, files) == []


def test_the_graph_sees_function_level_and_relative_imports():
    graph = _imports.import_graph()
    assert "linmeta.meta" in graph["linmeta.train"]
    assert "linmeta.reverse" in graph["linmeta.updating_kfo"]
    assert "linmeta.theory.precondition" in graph["linmeta.sim.head_body"]
    assert "linmeta.experiments.registry" in graph["linmeta.cli"]  # imported inside functions


def test_cycle_detection():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("target, line, expected", [
    ("theory/shallow.py", "from ..meta import meta_loss\n", "theory purity: linmeta.theory.shallow imports linmeta.meta"),
    ("theory/depth.py", "import numpy as np\nrng = np.random.default_rng(0)\n", "random-number names ['default_rng'"),
    ("losses.py", "from .train import meta_train\n", "layering: linmeta.losses (losses) imports linmeta.train"),
    ("meta.py", "from .experiments import runner\n", "engine: linmeta.meta imports linmeta.experiments.runner"),
    ("experiments/raghu_nil.py", "from .raghu_anil import PARAMS\n", "experiments: linmeta.experiments.raghu_nil imports"),
    ("rule.py", "from .rule import InnerLoop as _again\nfrom . import tasks\n", None),
    ("losses.py", "from . import tasks\n", "cycle: linmeta.losses -> linmeta.tasks"),
])
def test_a_planted_violation_is_caught(tmp_path, target, line, expected):
    """Copy the package, plant one import, and check that the contract reports exactly that kind of breach."""
    copy = tmp_path / "linmeta"
    shutil.copytree(_imports.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / target
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    found = violations(_imports.import_graph(copy), _imports.module_files(copy))
    if expected is None:  # rule imports tasks: allowed (a lower layer); a module importing itself is ignored
        assert found == []
    else:
        assert any(expected in v for v in found), found


def test_source_fingerprint_follows_the_import_closure(tmp_path):
    fp = _imports.source_fingerprint("linmeta.experiments.arnold_depth")
    assert fp == _imports.source_fingerprint("linmeta.experiments.arnold_depth")  # cached and stable
    assert fp != _imports.source_fingerprint("linmeta.experiments.raghu_nil")
    graph = _imports.import_graph()
    deps = _imports.closure({"linmeta.experiments.arnold_depth"}, graph)
    assert {"linmeta.theory.shallow", "linmeta.sim.training", "linmeta.reverse", "linmeta.losses"} <= deps
    assert "linmeta.cli" not in deps and "linmeta.experiments.raghu_nil" not in deps
    ext = tmp_path / "my_claims.py"
    ext.write_text("from linmeta.theory import shallow\n")
    a = _imports.source_fingerprint("my_claims", str(ext))
    ext.write_text("from linmeta.theory import shallow  # edited\n")
    assert _imports.source_fingerprint("my_claims", str(ext)) != a
