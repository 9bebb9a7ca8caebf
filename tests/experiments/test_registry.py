"""The experiment registry (linmeta.experiments.registry)."""
import pytest

from linmeta.experiments import registry
from linmeta.experiments.base import ConfigError, Experiment, Param


def test_every_experiment_module_is_found_with_metadata():
    exps = registry.all_experiments()
    assert len(exps) >= 18
    for name, exp in exps.items():
        assert isinstance(exp, Experiment) and exp.name == name
        assert exp.paper and exp.figure and exp.claim
        assert all(isinstance(p, Param) for p in exp.params.values())
        # both presets validate
        exp.config("quick")
        exp.config("full")


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="available: .*core_expected_loss"):
        registry.get("no_such_experiment")
