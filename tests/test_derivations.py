"""Every derivation in derivations/ must agree with the numeric code it derives."""
import importlib.util
from pathlib import Path

import pytest

DERIVATIONS = sorted((Path(__file__).resolve().parent.parent / "derivations").glob("*.py"))


def test_every_derivation_is_found():
    assert DERIVATIONS, "no derivation scripts found"


@pytest.mark.parametrize("path", DERIVATIONS, ids=[p.stem for p in DERIVATIONS])
def test_derivation_verifies(path):
    spec = importlib.util.spec_from_file_location(f"derivation_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert hasattr(module, "verify"), f"{path.name} must define verify(seed=0)"
    module.verify(seed=0)
