"""The package's static import graph: what each linmeta module imports, read from its source.

Two users: the result cache fingerprints the source an experiment depends on (its module and
everything it imports from linmeta, transitively), so a code edit recomputes; and the architecture
test (``tests/test_architecture.py``) checks the layering contract on the same graph.  Both
module-level and function-level imports count.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "linmeta"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_files(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict:
    """``{module name: path}`` for every ``.py`` file of the package (``__init__`` files name their package)."""
    out = {}
    for path in sorted(Path(package_dir).rglob("*.py")):
        rel = path.relative_to(package_dir).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.AST, known: dict) -> list:
    """Absolute linmeta module names an import statement in ``module`` refers to."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    # ast.ImportFrom
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith(PACKAGE):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in known else target)
    return [t for t in out if t in known]


def import_graph(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> dict:
    """``{module: set of linmeta modules it imports}`` (static; module- and function-level imports)."""
    files = module_files(package_dir, package)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_resolve(name, is_package, node, files))
        edges.discard(name)
        graph[name] = edges
    return graph


def imports_of_file(path: Path) -> set:
    """The linmeta modules a source file outside the package imports (directly)."""
    files = module_files()
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            out.update(_resolve("__external__", False, node, files))
    return out


def closure(roots, graph: dict) -> set:
    """Every module reachable from ``roots`` (included) along the import graph."""
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m in seen or m not in graph:
            continue
        seen.add(m)
        todo.extend(graph[m])
    return seen


def _signature(paths) -> tuple:
    """What identifies the current contents of ``paths`` cheaply: each file's size and modification time."""
    out = []
    for path in paths:
        st = Path(path).stat()
        out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


_STATE: dict = {}


def _package_state():
    """The package's import graph and files, re-read whenever a source file changed (size or mtime)."""
    files = module_files()
    sig = _signature(files.values())
    if _STATE.get("sig") != sig:
        _STATE.update(sig=sig, graph=import_graph(), files=files, fingerprints={})
    return _STATE["graph"], _STATE["files"], sig


def source_fingerprint(module_name: str, module_file: str | None = None) -> str:
    """sha256 (20 hex digits) of the source a module depends on: itself and its linmeta import closure.

    ``module_name`` is a linmeta module (``linmeta.experiments.arnold_depth``), or any other module
    whose ``module_file`` is given (an experiment outside the package): then its file is hashed
    together with the closure of the linmeta modules it imports.  Fingerprints are cached per process
    and recomputed when a source file's size or modification time changes, so an edit is seen at once.
    """
    graph, files, sig = _package_state()
    key = (module_name, module_file, None if module_file is None else _signature([module_file]))
    hit = _STATE["fingerprints"].get(key)
    if hit is not None:
        return hit
    digest = hashlib.sha256()
    if module_name in graph:
        roots = {module_name}
    else:
        if module_file is None:
            raise ValueError(f"module {module_name!r} is not part of linmeta: pass module_file")
        roots = imports_of_file(Path(module_file))
        digest.update(module_name.encode() + b"\0" + Path(module_file).read_bytes() + b"\0")
    for name in sorted(closure(roots, graph)):
        digest.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    out = _STATE["fingerprints"][key] = digest.hexdigest()[:20]
    return out
