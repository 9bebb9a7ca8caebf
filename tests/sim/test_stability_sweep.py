"""Tests of linmeta.sim.stability_sweep: the engine's outer loop against the closed forms."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.sim import stability_sweep as SS
from linmeta.theory import multistep_stability as MS

H_NC = np.array([np.diag([1.0, 0.6]), np.diag([-0.25, 0.3])])
H_CV = np.array([np.diag([1.0, 0.6]), np.diag([0.25, 0.3])])


def _rotated(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for e in ((1.0, 0.6, 0.3), (0.8, 0.5, -0.15), (0.9, 0.4, -0.1)):
        Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        out.append(Q @ np.diag(e) @ Q.T)
    return 0.5 * (np.array(out) + np.swapaxes(np.array(out), -1, -2))


def test_task_losses_are_the_quadratics():
    w = np.array([[1.0, -2.0], [0.5, 0.3]])
    loss = SS.task_losses(H_NC, w, scale=np.array([1.0, 3.0]))
    M = np.array([[[0.2, 0.7]]])
    expect = [s * 0.5 * (M[0, 0] - wi) @ h @ (M[0, 0] - wi) for s, h, wi in zip((1.0, 3.0), H_NC, w)]
    assert np.allclose(loss.value(M), expect, atol=1e-15)


def test_engine_meta_hessian_is_the_closed_form_and_second_order():
    H = _rotated()
    p = np.array([0.2, 0.5, 0.3])
    for N in (1, 4):
        eng = SS.engine_meta_hessian(H, 0.2, N, p)
        th = MS.meta_hessian(H, 0.2, N, p)
        assert np.max(np.abs(eng - th)) < 1e-12 * np.max(np.abs(th))
    # dropping the second-order terms (FO-MAML) gives a visibly different matrix: the check can fail
    support = SS.task_losses(H).A * 0.2
    fo = lm.meta_value_and_grad((np.eye(3)[:, None, :],), lm.QuadraticLoss.indefinite(np.broadcast_to(support, (3,) + support.shape),
                                           np.zeros((3, 3, 3, 1)), np.zeros((3, 3))), SS.task_losses(H),
                                lm.InnerLoop(4, 1.0, first_order=True, inner_loss="population")).params[0][:, 0, :].T
    assert np.max(np.abs(fo - MS.meta_hessian(H, 0.2, 4))) > 1e-2


def test_alpha_on_the_run_axis_equals_separate_runs():
    a = np.array([0.05, 0.2, 0.4])
    together = SS.outer_growth(H_NC, a, 3, 1.0, outer_steps=60, tail=20)
    alone = np.array([SS.outer_growth(H_NC, [x], 3, 1.0, outer_steps=60, tail=20)[0] for x in a])
    assert np.allclose(together, alone, rtol=1e-13)


def test_growth_rate_is_the_spectral_radius_and_never_above_it():
    for H in (H_NC, H_CV, _rotated()):
        a = np.geomspace(0.01, 3.0, 15)
        sim = SS.outer_growth(H, a, 2, 1.0, outer_steps=200, tail=50)
        th = MS.outer_rate(H, a, 2, 1.0)
        assert np.all(sim <= th * (1 + 1e-9))
        assert np.median(np.abs(sim - th) / th) < 1e-8


@pytest.mark.parametrize("H,hi", [(H_NC, 4.0), (H_CV, 6.0)])
def test_located_boundary_brackets_the_closed_form(H, hi):
    for N in (1, 5):
        r = SS.locate_boundary(H, N, 1.0, 1e-3, hi, points=8, rounds=2, outer_steps=150, tail=40)
        th = MS.critical_alpha(H, N, 1.0, hi)
        assert r["found"] and r["lo"] <= th <= r["hi"]
        coarse = np.geomspace(1e-3, hi, 8)
        assert r["hi"] - r["lo"] <= (coarse[1] / coarse[0] - 1) * th / 9**2 * 1.01


def test_boundary_not_found_is_reported():
    r = SS.locate_boundary(H_CV, 2, 1.0, 1e-3, 1.0, points=6, rounds=1, outer_steps=50, tail=10)
    assert not r["found"] and np.isnan(r["lo"])


def test_meta_train_raises_divergence_error_exactly_on_the_unstable_side():
    w = np.array([[1.0, 2.0], [-1.0, 0.5]])
    a_c = MS.two_point_boundary(1.0, -0.25, 0.5, 4)
    below = SS.meta_train_outcome(H_NC, w, 0.8 * a_c, 4, 1.0, outer_steps=1500)
    above = SS.meta_train_outcome(H_NC, w, 1.25 * a_c, 4, 1.0, outer_steps=1500)
    assert not below["diverged"] and above["diverged"] and above["step"] < 1500


def test_full_batch_meta_train_lands_on_the_meta_optimum():
    w = np.array([[1.0, 2.0], [-1.0, 0.5]])
    p = np.array([0.3, 0.7])
    fam = SS.FixedQuadraticTasks(SS.task_losses(H_CV, w), SS.task_losses(H_CV, w, 2 * p))
    rule = lm.InnerLoop(steps=3, alpha=0.5, inner_loss="population")
    res = lm.meta_train((np.zeros((1, 2)),), fam, rule, steps=3000, lr=1.0, optimizer="sgd", tasks_per_step=2, K=None,
                        Q=None, eval_tasks=2, seed=0, progress=False)
    P = [np.linalg.matrix_power(np.eye(2) - 0.5 * h, 3) for h in H_CV]
    G = [pi * Pi @ h @ Pi for pi, Pi, h in zip(p, P, H_CV)]
    expect = np.linalg.solve(sum(G), sum(g @ wi for g, wi in zip(G, w)))
    assert np.max(np.abs(res.params[0][0] - expect)) < 1e-10


def test_deterministic_and_validated():
    a = SS.outer_growth(H_NC, [0.1, 0.3], 2, 1.0, outer_steps=30, tail=10, seed=3)
    b = SS.outer_growth(H_NC, [0.1, 0.3], 2, 1.0, outer_steps=30, tail=10, seed=3)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="tail"):
        SS.outer_growth(H_NC, [0.1], 2, 1.0, outer_steps=10, tail=20)
    with pytest.raises(ValueError, match="alpha_hi"):
        SS.locate_boundary(H_NC, 2, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="hessians"):
        SS.outer_growth(np.eye(2), [0.1], 2, 1.0)
