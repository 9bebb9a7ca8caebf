"""Losses as functions of the end-to-end map (linmeta.losses)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.losses import LogisticLoss, sample_moments

from .helpers import central_diff_grad, complex_step_grad, rel_err


def test_quadratic_loss_equals_mse_on_data():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 7, 4)), rng.standard_normal((3, 7, 2))
    M = rng.standard_normal((2, 4))
    loss = sample_moments(X, Y)
    mse = 0.5 * np.mean(np.sum((X @ M.T - Y) ** 2, axis=-1), axis=-1)
    assert rel_err(loss.value(M), mse) <= 1e-13


@pytest.mark.parametrize("make", ["quadratic", "logistic"])
def test_gradient_and_hessian_action(make):
    rng = np.random.default_rng(1)
    if make == "quadratic":
        loss = sample_moments(rng.standard_normal((1, 6, 3)), rng.standard_normal((1, 6, 2)))
        M = rng.standard_normal((2, 3))
        grad_ref = lambda fn, x: complex_step_grad(fn, x)
    else:
        loss = LogisticLoss(rng.standard_normal((1, 9, 3)), (rng.random((1, 9)) > 0.5).astype(float))
        M = rng.standard_normal((1, 3))
        grad_ref = lambda fn, x: central_diff_grad(fn, x, h=1e-3)
    g = loss.grad(M)[0]
    assert rel_err(g, grad_ref(lambda m: loss.value(m)[0], M)) <= 1e-9
    dM = rng.standard_normal(M.shape)
    # Hessian action = directional derivative of the gradient
    h = 1e-5
    fd = (loss.grad(M + h * dM) - loss.grad(M - h * dM))[0] / (2 * h)
    assert rel_err(loss.hess_action(M, dM)[0], fd) <= 1e-8


def test_logistic_is_stable_for_huge_logits():
    X = np.array([[[1e3, 0.0], [-1e3, 0.0]]])
    loss = LogisticLoss(X, np.array([[1.0, 0.0]]))
    M = np.array([[1.0, 0.0]])
    assert np.isfinite(loss.value(M)).all() and loss.value(M)[0] < 1e-300 + 1e-12
    assert np.isfinite(loss.grad(M)).all()
    assert np.isfinite(loss.hess_action(M, M)).all()


def test_accuracy():
    X = np.array([[[1.0], [-1.0], [2.0]]])
    loss = LogisticLoss(X, np.array([[1.0, 0.0, 0.0]]))
    assert np.allclose(loss.accuracy(np.array([[1.0]])), 2 / 3)


def test_optimum_and_curvature():
    rng = np.random.default_rng(2)
    fam = lm.GaussianRegression(d=3, out=2, input_cov=np.diag([2.0, 1.0, 0.5]))
    tasks = fam.sample_tasks(4, rng)
    pop = tasks.population()
    assert rel_err(pop.optimum(), tasks.w_star) <= 1e-12
    assert np.allclose(pop.curvature_max(), 2.0)


def test_take_selects_tasks():
    rng = np.random.default_rng(3)
    loss = sample_moments(rng.standard_normal((5, 4, 2)), rng.standard_normal((5, 4, 1)))
    sub = loss.take([1, 3])
    assert np.array_equal(sub.A, loss.A[[1, 3]]) and sub.n_tasks == 2


def test_sample_moments_rejects_bad_data():
    X = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="share"):
        sample_moments(X, np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match="Y contains"):
        sample_moments(X, np.full((2, 3, 1), np.nan))


def _squared_problem(seed, T=4, n=5, d=6, out=2):
    rng = np.random.default_rng(seed)
    return rng, lm.SquaredLoss(rng.standard_normal((T, n, d)), rng.standard_normal((T, n, out)))


def test_squared_loss_equals_its_moments():
    """Data form and moment form are the same loss: value, gradient and Hessian action to round-off."""
    rng, loss = _squared_problem(4)
    mom = loss.moments()
    M, dM = rng.standard_normal((2, 6)), rng.standard_normal((4, 2, 6))
    assert rel_err(loss.value(M), mom.value(M)) <= 1e-13
    assert rel_err(loss.grad(M), mom.grad(M)) <= 1e-13
    assert rel_err(loss.hess_action(M, dM), mom.hess_action(M, dM)) <= 1e-13
    assert np.allclose(loss.curvature_max(), mom.curvature_max(), rtol=1e-12, atol=0)
    assert rel_err(loss.optimum(), mom.optimum()) <= 1e-10
    assert loss.take([0, 2]).n_tasks == 2 and (loss.d, loss.out, loss.batch_shape) == (6, 2, ())


def test_squared_loss_gradient_is_the_complex_step_derivative():
    rng, loss = _squared_problem(5, T=1)
    M = rng.standard_normal((2, 6))
    assert rel_err(loss.grad(M)[0], complex_step_grad(lambda m: loss.value(m)[0], M)) <= 1e-12


def test_meta_gradient_on_data_form_equals_moment_form():
    """The engine gives the same meta-gradient (second order included) from either form."""
    rng, support = _squared_problem(6, n=3)  # n < d: the few-shot case the data form is for
    _, query = _squared_problem(7, n=8)
    params = lm.init_deep_linear(6, (4, 3), 2, rng=rng, scale=0.8)
    rule = lm.InnerLoop(2, 0.1, "all")
    a = lm.meta_value_and_grad(params, support, query, rule)
    b = lm.meta_value_and_grad(params, support.moments(), query.moments(), rule)
    assert abs(a.value - b.value) <= 1e-13 * abs(b.value)
    for ga, gb in zip(a.params, b.params):
        assert rel_err(ga, gb) <= 1e-12


def test_squared_loss_rejects_bad_data():
    with pytest.raises(ValueError, match="share their leading shape"):
        lm.SquaredLoss(np.zeros((2, 3, 4)), np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match=r"X must have shape \(\*batch, T, n, d\)"):
        lm.SquaredLoss(np.zeros((3, 4)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="X contains"):
        lm.SquaredLoss(np.full((2, 3, 4), np.inf), np.zeros((2, 3, 1)))
