"""Standard errors (linmeta.sim.stats): one estimator each, checked against known variances and replications."""
import numpy as np
import pytest

from linmeta.sim.stats import (Estimate, crossed_difference_se, crossed_table_mean_se, estimate, mean_se,
                               ratio_mean_se)


def test_mean_se_along_an_axis_and_for_one_sample():
    x = np.random.default_rng(0).standard_normal((400, 3))
    m, s = mean_se(x)
    assert np.allclose(m, x.mean(0)) and np.allclose(s, x.std(0, ddof=1) / 20)
    assert mean_se([2.0]) == (2.0, 0.0)
    assert isinstance(mean_se(x[:, 0])[0], float)


def test_estimate_standard_error():
    x = np.random.default_rng(0).standard_normal(10_000)
    e = estimate(x)
    assert abs(e.stderr - 1 / 100) < 1e-3 and e.n == 10_000
    assert abs(e.z(0.0)) < 4.5
    assert Estimate(1.0, 0.0, 3).z(1.0) == 0.0 and Estimate(1.0, 0.0, 3).z(0.0) == np.inf


def test_seeds_tasks_standard_error_components():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(5)
    only_seeds = np.repeat(a[:, None], 7, axis=1)
    assert np.isclose(crossed_table_mean_se(only_seeds)[1], a.std(ddof=1) / np.sqrt(5))
    b = rng.standard_normal(9)
    only_tasks = np.repeat(b[None, :], 4, axis=0)
    assert np.isclose(crossed_table_mean_se(only_tasks)[1], b.std(ddof=1) / np.sqrt(9))


def test_crossed_difference_two_way_standard_error():
    a = {"mc": np.array([1.0, 2.0, 3.0]), "mc_task_mean": np.array([1.0, 3.0])}
    b = {"mc": np.array([0.0, 0.0, 1.0]), "mc_task_mean": np.array([0.0, 1.0])}
    m, s = crossed_difference_se(a, b)
    assert m == pytest.approx(5.0 / 3.0)
    assert s == pytest.approx(np.sqrt(np.var([1, 2, 2], ddof=1) / 3 + np.var([1, 2], ddof=1) / 2))




def test_ratio_mean_se_delta_method():
    rng = np.random.default_rng(0)
    num = 2.0 + rng.standard_normal(4000)
    den = 1.0 + 0.5 * rng.standard_normal(4000)
    r, se = ratio_mean_se(num, den)
    assert r == pytest.approx(num.mean() / den.mean())
    # the delta-method SE agrees with the spread of ratios over independent replications
    reps = [ratio_mean_se(2.0 + rng.standard_normal(4000), 1.0 + 0.5 * rng.standard_normal(4000))[0]
            for _ in range(300)]
    assert se == pytest.approx(np.std(reps, ddof=1), rel=0.15)
    assert ratio_mean_se(num, num) == (1.0, 0.0)




def test_crossed_table_needs_two_axes():
    with pytest.raises(ValueError, match="seeds, tasks"):
        crossed_table_mean_se(np.ones(4))
