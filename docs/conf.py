"""Sphinx configuration of the linmeta documentation.

Build (offline, warnings are errors):  ``sphinx-build -W --keep-going -b html docs docs/_build/html``
from the repository root, with the ``docs`` extra installed (``pip install -e ".[docs]"``).

At the start of the build this file
* converts the tutorials (``tutorials/NN_*.py``, jupytext percent scripts) to notebooks in
  ``docs/tutorials/``; myst-nb executes them (a failing assertion fails the build) and renders their outputs;
* writes ``docs/gallery.md`` and ``docs/verdicts.md`` from the experiment registry, the claims catalogue and
  the checks JSON (``$LINMETA_CHECKS_JSON`` or ``docs/_build/checks.json``; see ``docs/generate.py``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))
# the notebooks' kernels inherit the environment: draw figures inline (also where MPLBACKEND=Agg is set)
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import generate  # noqa: E402  (docs/generate.py)
import linmeta  # noqa: E402


def _convert_tutorials() -> list:
    """``tutorials/NN_name.py`` -> ``docs/tutorials/NN_name.ipynb`` (unexecuted; rewritten only if changed)."""
    import jupytext

    out = DOCS / "tutorials"
    out.mkdir(exist_ok=True)
    names = []
    for src in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        nb = jupytext.read(src, fmt="py:percent")
        text = jupytext.writes(nb, fmt="ipynb")
        dst = out / (src.stem + ".ipynb")
        if not dst.is_file() or dst.read_text() != text:
            dst.write_text(text)
        names.append(src.stem)
    for stale in out.glob("*.ipynb"):
        if stale.stem not in names:
            stale.unlink()
    return names


TUTORIALS = _convert_tutorials()
GENERATED = generate.write_build_pages()

project = "linmeta"
author = "the linmeta authors"
copyright = "the linmeta authors (MIT licence)"
release = version = linmeta.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx-mathjax-offline",  # MathJax served from _static: the pages need no network
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "generate.py", "**/.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# MyST / notebooks
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("LINMETA_DOCS_EXECUTE", "cache")  # "off" to render unexecuted notebooks
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# API reference
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections state types and shapes
autodoc_default_options = {"members": True}  # (a False value would *set* a flag option: leave flags out)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# HTML
html_theme = "furo"
html_title = f"linmeta {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False


# Docstrings write array shapes as ``(*runs, n, d)`` and absolute values as ``|x|``, in plain text.  In
# reStructuredText a ``*`` opens emphasis and ``|x|`` is a substitution, so outside literals both are
# escaped before numpydoc and autodoc read the docstring (the source stays readable as plain text).
import re  # noqa: E402

_STAR_ARG = re.compile(r"([(\[,]\s*)\*(?=[A-Za-z_,)\s])")
_BARS = re.compile(r"\|([A-Za-z_]\w*)\|")


def _escape_plain_text(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        parts = line.split("``")
        for j in range(0, len(parts), 2):  # the even parts are outside ``literals``
            parts[j] = _BARS.sub(r"\\|\1\\|", _STAR_ARG.sub(r"\1\\*", parts[j]))
        lines[i] = "``".join(parts)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_plain_text, priority=100)
