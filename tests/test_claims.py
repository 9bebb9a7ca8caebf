"""The catalogue of claims (:mod:`linmeta.claims`): labels are unique, used, and listed where they are used.

Static: every experiment module's ``claim=`` labels (string literals in its source, including module-level
constants) exist in the catalogue, each catalogued claim is used by every experiment it lists, and each
experiment that uses a label is listed by it.  Dynamic checks run in the experiments' own tests, because
:class:`~linmeta.experiments.base.Check` validates its ``claim`` against the catalogue.
"""
import ast
import re
from pathlib import Path

import pytest

from linmeta import claims
from linmeta.experiments import base, registry

LABEL = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")


def _labels_in_module(name: str) -> set:
    """String constants in the experiment's source that look like claim labels."""
    src = Path(registry.get(name).run.__code__.co_filename).read_text()
    found = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and LABEL.match(node.value):
            found.add(node.value)
    return found


def _built_in() -> list:
    """The package's own experiments (other tests may register external ones in this process)."""
    return [name for name in registry.names() if registry.source(name).startswith("built in")]


USED = {name: _labels_in_module(name) & set(claims.CLAIMS) for name in _built_in()}


def test_labels_are_well_formed_and_unique():
    labels = [c.label for c in claims._CLAIMS]
    assert len(labels) == len(set(labels)), "duplicate claim labels"
    for c in claims.CLAIMS.values():
        assert LABEL.match(c.label), c.label
        assert c.statement and c.setting and c.experiments, c.label


def test_anchors_are_unique_and_html_safe():
    anchors = [claims.anchor(label) for label in claims.CLAIMS]
    assert len(anchors) == len(set(anchors))
    assert all(re.fullmatch(r"[a-z0-9-]+", a) for a in anchors)


def test_unknown_label_is_refused_by_name():
    with pytest.raises(ValueError, match="no-such-claim"):
        claims.get("arnold.no-such-claim")
    with pytest.raises(ValueError, match="no-such-claim"):
        base.close_se("x", 0.0, 0.0, 1.0, claim="arnold.no-such-claim")


def test_every_catalogued_experiment_exists():
    known = set(_built_in())
    for c in claims.CLAIMS.values():
        assert set(c.experiments) <= known, (c.label, set(c.experiments) - known)


def test_every_label_in_an_experiment_is_catalogued_and_lists_it():
    for name in _built_in():
        src_labels = _labels_in_module(name)
        prefixes = {c.label.split(".")[0] for c in claims.CLAIMS.values()}
        unknown = {s for s in src_labels if s.split(".")[0] in prefixes and s not in claims.CLAIMS}
        assert not unknown, (name, unknown)
        for label in USED[name]:
            assert name in claims.get(label).experiments, f"{label} is tested by {name} but does not list it"


def test_every_claim_is_tested_by_each_experiment_it_lists():
    for c in claims.CLAIMS.values():
        for name in c.experiments:
            assert c.label in USED[name], f"{c.label} lists {name}, whose checks never use it"


def test_every_experiment_tests_some_claim():
    for name in _built_in():
        assert USED[name], f"{name}: no check carries a claim label"


def test_research_note_numbers_are_gone_from_check_names():
    """Check names cite a stable label, not an ambiguous research-note number such as P7."""
    for name in _built_in():
        tree = ast.parse(Path(registry.get(name).run.__code__.co_filename).read_text())
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "checks")
        texts = [n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        cited = [t for t in texts if re.search(r"\bP\d{1,2}\b", t)]
        assert not cited, (name, cited)


def test_generated_catalogue_page_is_up_to_date():
    """``docs/claims.md`` is generated from this catalogue (``python docs/generate.py claims``) and committed."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("linmeta_docs_generate", root / "docs" / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.claims_markdown()
    assert (root / "docs" / "claims.md").read_text() == text, "run: python docs/generate.py claims"
    for label in claims.CLAIMS:
        assert f'<a id="{claims.anchor(label)}"></a>' in text
