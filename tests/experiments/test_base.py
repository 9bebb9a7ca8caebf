"""Experiment declarations and checks (linmeta.experiments.base)."""
import math


import pytest

from linmeta.experiments.base import (ConfigError, Param, above, below, close_rel, close_se,
                                      small)

from .. import sweep_fixture

EXP = sweep_fixture.EXPERIMENT


def test_presets_and_overrides():
    assert EXP.config("quick")["pieces"] == 8 and EXP.config("full", seed=3)["seed"] == 3
    assert EXP.config("quick", {"pieces": 2})["pieces"] == 2
    with pytest.raises(ConfigError, match="unknown parameter 'x'"):
        EXP.config("quick", {"x": 1})
    with pytest.raises(ConfigError, match="must be of type int"):
        EXP.config("quick", {"pieces": "2"})
    with pytest.raises(ConfigError, match="mode must be"):
        EXP.config("medium")


def test_param_parsing():
    p = Param("ints", (32, 32), low=1)
    assert p.parse("w", "16,8") == (16, 8) and p.parse("w", " 16, 8 ") == (16, 8)
    with pytest.raises(ConfigError, match="is empty"):  # a preset that is never empty refuses ()
        p.parse("w", "")
    with pytest.raises(ConfigError, match="empty item"):
        p.parse("w", "16,,8")
    assert Param("ints", (), (16, 16), low=1).parse("w", "") == ()  # an empty preset (shallow) allows ()
    assert Param("ints", (32, 32), low=1, min_len=0).parse("w", "") == ()
    with pytest.raises(ConfigError, match="out of range"):
        p.parse("w", "16,-8")
    b = Param(bool, True)
    assert b.parse("b", "off") is False
    with pytest.raises(ConfigError, match="not a valid bool"):
        b.parse("b", "maybe")
    c = Param(str, "adam", choices=("adam", "sgd"))
    with pytest.raises(ConfigError, match="choose one of adam, sgd"):
        c.parse("opt", "rmsprop")
    f = Param(float, 0.1)
    with pytest.raises(ConfigError, match="finite"):
        f.parse("alpha", "nan")


def test_check_constructors():
    assert close_se("a", 1.0, 1.3, 0.1).passed and not close_se("a", 1.0, 1.5, 0.1).passed
    assert close_rel("b", 2.0, 2.0 + 1e-12).passed and not close_rel("b", 2.0, 2.001).passed
    assert below("c", 1.0, 0.5, 0.1).passed and not below("c", 1.0, 0.8, 0.1).passed
    assert above("d", 1.0, 1.5, 0.1).passed and not above("d", 1.0, 1.2, 0.1).passed
    assert small("e", 1e-12, 1e-10).passed and not small("e", 1e-8, 1e-10).passed
    d = close_se("a", 1.0, 1.3, 0.1).as_dict()
    assert d["theory"] == 1.0 and d["passed"] is True
    assert small("e", math.nan, 1.0).passed is False
