"""The tutorials (``tutorials/NN_*.py``, jupytext percent scripts): static checks only, in a second or so.

Executing them takes a minute or two in all; ``.ci/run`` does that (the documentation build executes every
notebook and fails on a failing assertion).  Here: each is valid Python in the percent format, imports only
linmeta's public API, asserts its own point outside the solutions, draws a figure, and ends with two or three
exercises with worked solutions in collapsed cells; the documentation lists every one of them.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
PUBLIC_MODULES = re.compile(r"^linmeta(\.(theory|sim)(\.[a-z_][a-z0-9_]*)?|\.experiments(\.(base|registry|runner|"
                            r"plotting))?)?$")
ENGINE = {"meta", "inner_loop", "reverse", "train", "_factored", "_chain_rule", "preconditioners", "updating_kfo",
          "stability", "losses", "tasks", "models", "rule", "cache", "progress", "cli"}


def cells(path: Path) -> list:
    """``[(kind, tags, text)]`` of a percent script: kind ``"markdown"`` or ``"code"``."""
    out, kind, tags, buf = [], None, (), []
    for line in path.read_text().splitlines():
        m = re.match(r"^# %%(.*)$", line)
        if m:
            if kind is not None:
                out.append((kind, tags, "\n".join(buf)))
            rest = m.group(1)
            kind = "markdown" if "[markdown]" in rest else "code"
            t = re.search(r"tags=\[(.*?)\]", rest)
            tags = tuple(x.strip().strip("\"'") for x in t.group(1).split(",")) if t else ()
            buf = []
        elif kind is not None:
            buf.append(line)
    if kind is not None:
        out.append((kind, tags, "\n".join(buf)))
    return out


def test_there_are_seven_tutorials_and_the_docs_list_them():
    assert len(TUTORIALS) >= 7, [p.name for p in TUTORIALS]
    index = (ROOT / "docs" / "tutorials.md").read_text()
    for p in TUTORIALS:
        assert f"tutorials/{p.stem}" in index, f"docs/tutorials.md does not list {p.stem}"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_a_percent_notebook(path):
    text = path.read_text()
    assert text.startswith("# ---\n# jupyter:\n#   jupytext:"), "the jupytext header is missing"
    assert "format_name: percent" in text.split("# ---", 2)[1]
    ast.parse(text, filename=str(path))  # valid Python: it also runs as a script
    cs = cells(path)
    first = cs[0][2].splitlines()[0]
    assert cs[0][0] == "markdown" and re.match(rf"^# # {int(path.name[:2])}\. \S", first), first


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_uses_only_the_public_api(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.module == "linmeta":
                assert not any(a.name.startswith("_") or a.name in ENGINE for a in node.names), ast.dump(node)
        else:
            continue
        for n in names:
            if n.split(".")[0] == "linmeta":
                assert PUBLIC_MODULES.match(n), f"{path.name}: imports {n}, not a public facade"
        if isinstance(node, ast.ImportFrom) and node.module and PUBLIC_MODULES.match(node.module):
            assert not any(a.name.startswith("_") for a in node.names), f"{path.name}: private name from {node.module}"
    # no private attribute of the facade (lm._x) and no engine module through it (lm.meta.x)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lm":
            assert not node.attr.startswith("_") and node.attr not in ENGINE, f"{path.name}: lm.{node.attr}"


def _assert_count(code: str) -> int:
    return sum(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(code)))


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_asserts_its_point_draws_a_figure_and_has_solved_exercises(path):
    cs = cells(path)
    ex = next((i for i, (k, _, t) in enumerate(cs) if k == "markdown" and re.search(r"^# ## Exercises", t, re.M)), None)
    assert ex is not None, "no '## Exercises' section"
    body = "\n".join(t for k, _, t in cs[:ex] if k == "code")
    assert _assert_count(body) >= 3, "the tutorial should assert its own point (closed form vs simulation)"
    assert re.search(r"plt\.subplots|plt\.figure", body), "no figure before the exercises"
    numbered = re.findall(r"^# (\d)\. \*\*", cs[ex][2], re.M)
    assert 2 <= len(numbered) <= 3, f"two or three exercises, found {numbered}"
    solutions = [i for i, (k, _, t) in enumerate(cs) if k == "markdown" and re.search(r"^# ### Solution \d", t, re.M)]
    assert len(solutions) == len(numbered), "one worked solution per exercise"
    for i in solutions:
        kind, tags, code = cs[i + 1]
        assert kind == "code" and "hide-cell" in tags, "a solution is a collapsed (hide-cell) code cell"
        assert _assert_count(code) >= 1, "each worked solution checks its answer"
