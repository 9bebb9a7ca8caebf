"""Layer-space gradients and Hessian-vector products (linmeta._chain_rule)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta._chain_rule import LayerCalculus

from .helpers import complex_step_grad, rel_err


def _setup(seed, depth):
    rng = np.random.default_rng(seed)
    loss = lm.meta_batch(lm.GaussianRegression(d=3, out=2).sample_tasks(1, rng), 5, 5, rng).support
    widths = tuple(int(w) for w in rng.integers(1, 5, size=depth - 1))
    params = lm.init_deep_linear(3, widths, 2, rng=rng)
    return rng, loss, params


def _loss_of(loss, params):
    return loss.value(lm.end_to_end(params)[None])[0]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_layer_gradients(depth):
    rng, loss, params = _setup(depth, depth)
    calc = LayerCalculus(params)
    G = loss.grad(calc.M[None])[0]
    for l in range(depth):
        def f(W, l=l):
            p = list(params)
            p[l] = W
            return _loss_of(loss, p)

        assert rel_err(calc.layer_grad(G, l), complex_step_grad(f, params[l])) <= 1e-10


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_hessian_vector_product_all_and_partial_directions(depth):
    rng, loss, params = _setup(10 + depth, depth)
    calc = LayerCalculus(params)
    G = loss.grad(calc.M[None])[0]
    for mask in ([True] * depth, [l % 2 == 0 for l in range(depth)]):
        V = [rng.standard_normal(W.shape) if m else None for W, m in zip(params, mask)]
        Hv = calc.hvp(lm.QuadraticLoss(loss.A[0], loss.B[0], loss.c[0]), G, V)
        # reference: the directional derivative of the full layer gradient, by complex step in t
        def grads_at(t):
            p = [W + t * (0 if v is None else v) for W, v in zip(params, V)]
            c = LayerCalculus(p)
            Gt = c.M @ loss.A[0] - loss.B[0].T
            return c.layer_grads(Gt)

        h = 1e-30
        ref = [np.imag(g) / h for g in grads_at(1j * h)]
        for a, b in zip(Hv, ref):
            assert rel_err(a, b) <= 1e-10
