"""Tests of linmeta.sim.fo_bias: engine-trained fixed points against the closed forms."""
import numpy as np

from linmeta.sim import fo_bias as SF
from linmeta.theory import fo_bias as FB


def test_full_batch_gd_lands_on_the_discrete_closed_forms():
    rng = np.random.default_rng(0)
    H = []
    for _ in range(3):
        X = rng.standard_normal((2, 2))
        S = X @ X.T + 0.3 * np.eye(2)
        H.append(S / np.linalg.eigvalsh(S)[-1])
    H, w, p = np.array(H), rng.standard_normal((3, 2)), np.array([0.2, 0.5, 0.3])
    th = FB.discrete_fixed_points(H, w, 0.4, 2, p)
    maml = SF.full_batch_fixed_point(H, w, 0.4, 2, first_order=False, weights=p, iters=3000)
    fo = SF.full_batch_fixed_point(H, w, 0.4, 2, first_order=True, weights=p, iters=3000)
    assert np.max(np.abs(maml - th.w_maml[0])) < 1e-10 and np.max(np.abs(fo - th.w_fo[0])) < 1e-10
    # the check can fail: the two engines' answers differ by the closed-form bias
    assert np.linalg.norm(fo - maml) > 1e-2


def test_sgd_late_averages_are_unbiased_for_the_fixed_points():
    fam = FB.isotropic_two_type_family(0.5, 0.5, 1.5, [1.0, 0.0], [-1.0, 0.0], spread=0.5)
    th = FB.fo_bias(fam, None, 0.3, 1)
    r = SF.paired_fixed_points(fam, 0.3, 1, runs=12, burn=60, average=200, lr=0.5, tasks_per_step=8, seed=3)
    for name, expect in (("maml", th.w_maml[0]), ("fo", th.w_fo[0])):
        x = r[name][:, 0, :]
        se = x.std(0, ddof=1) / np.sqrt(x.shape[0])
        assert np.all(np.abs(x.mean(0) - expect) <= 5 * se)
    diff = (r["fo"] - r["maml"])[:, 0, :]
    se = diff.std(0, ddof=1) / np.sqrt(diff.shape[0])
    assert np.all(np.abs(diff.mean(0) - th.bias[0]) <= 5 * se)
    # common random numbers: the paired difference is far less noisy than the iterates
    assert se[0] < 0.5 * (r["fo"][:, 0, 0].std(ddof=1) / np.sqrt(12))
    again = SF.paired_fixed_points(fam, 0.3, 1, runs=12, burn=60, average=200, lr=0.5, tasks_per_step=8, seed=3)
    assert np.array_equal(again["fo"], r["fo"]) and np.array_equal(again["maml"], r["maml"])
