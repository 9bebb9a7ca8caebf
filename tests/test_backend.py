"""The torch backend: the engine on torch tensors, and torch autograd through the unrolled inner loop.

Skipped where torch is not installed; linmeta itself never needs torch.
"""
import numpy as np
import pytest

import linmeta as lm
from linmeta._backend import to_backend, to_numpy
from linmeta.meta import meta_value_and_grad

from .helpers import rel_err

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _problem(seed, depth=3, logistic=False, d=4, out=2, T=5):
    rng = np.random.default_rng(seed)
    if logistic:
        fam = lm.BinaryClassification(d=d, label_noise=0.1)
        w = fam.sample_tasks(T, rng)
        batch = fam.meta_batch(w, 6, 7, rng)
        out = 1
    else:
        fam = lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), noise_std=0.3)
        batch = lm.meta_batch(fam.sample_tasks(T, rng), 6, 7, rng)
    widths = tuple(int(w) for w in rng.integers(2, 5, size=depth - 1))
    params = lm.init_deep_linear(d, widths, out, rng=rng, scale=0.8)
    return params, batch


def _data_of(loss):
    """Return per-task closures computing the loss on torch tensors from M (independent of linmeta's losses)."""
    if isinstance(loss, lm.LogisticLoss):
        X, y = torch.as_tensor(loss.X), torch.as_tensor(loss.y)

        def f(t, M):
            z = X[t] @ M[0]
            return torch.nn.functional.binary_cross_entropy_with_logits(z, y[t])
    else:
        A, B, c = (torch.as_tensor(x) for x in (loss.A, loss.B, loss.c))

        def f(t, M):
            return 0.5 * torch.trace(M @ A[t] @ M.T) - torch.trace(M @ B[t]) + c[t]
    return f


def torch_unrolled_meta_grad(params, batch, rule, precond=None, phi=None):
    """Reference: a per-task Python loop, autograd through the unrolled inner loop with create_graph=True."""
    W = [torch.tensor(p, requires_grad=True) for p in params]
    adapted = rule.adapted_layers(len(W))
    phis = [[torch.tensor(p, requires_grad=True) for p in pl] for pl in (phi or [()] * len(W))]
    support, query = _data_of(batch.support), _data_of(batch.query)
    T = batch.support.n_tasks

    def transform(l, g, factors):
        if precond is None or not factors:
            return g
        if isinstance(precond, lm.KFO):
            Lf, Rf = factors
            Lt, Rt = (Lf.T @ Lf, Rf.T @ Rf) if precond.psd else (Lf, Rf)
            return Lt @ g @ Rt
        return factors[0] * g  # Meta-SGD

    adapt_factors = isinstance(precond, lm.KFO) and precond.update_factors
    total = 0.0
    for t in range(T):
        theta = list(W)
        fast = [list(pl) for pl in phis]  # per-task copies of the factors (they adapt if adapt_factors)
        for step in range(rule.steps):
            M = theta[0]
            for Wl in theta[1:]:
                M = Wl @ M
            loss = support(t, M)
            if adapt_factors and step > 0:
                # Sha-Lab/kfo: the factors take an SGD step on the adaptation loss before the model update
                flat = [p for l in adapted for p in fast[l]]
                fg = torch.autograd.grad(loss, flat, create_graph=not rule.first_order, retain_graph=True)
                it = iter(fg)
                for l in adapted:
                    fast[l] = [p - rule.alpha * next(it) for p in fast[l]]
            grads = torch.autograd.grad(loss, [theta[l] for l in adapted], create_graph=not rule.first_order)
            for l, g in zip(adapted, grads):
                theta[l] = theta[l] - rule.alpha * transform(l, g, fast[l])
        M = theta[0]
        for Wl in theta[1:]:
            M = Wl @ M
        total = total + query(t, M)
    total = total / T
    flat_phi = [p for pl in phis for p in pl]
    grads = torch.autograd.grad(total, W + flat_phi, allow_unused=True)
    return total.item(), [g.numpy() for g in grads[: len(W)]], [None if g is None else g.numpy() for g in grads[len(W):]]


@pytest.mark.parametrize("layers", ["all", "last", "first", (0, 2)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_matches_torch_autograd_through_unrolled_loop(layers, k):
    params, batch = _problem(10 * k + len(str(layers)))
    rule = lm.InnerLoop(k, 0.2, layers)
    ref_val, ref_grads, _ = torch_unrolled_meta_grad(params, batch, rule)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    assert abs(mg.value - ref_val) <= 1e-12 * abs(ref_val)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10


def test_matches_torch_autograd_logistic():
    params, batch = _problem(3, logistic=True)
    rule = lm.InnerLoop(2, 0.5, "all")
    ref_val, ref_grads, _ = torch_unrolled_meta_grad(params, batch, rule)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    assert abs(mg.value - ref_val) <= 1e-12 * abs(ref_val)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10


def test_matches_torch_autograd_first_order():
    params, batch = _problem(4)
    rule = lm.InnerLoop(2, 0.2, "all", first_order=True)
    _, ref_grads, _ = torch_unrolled_meta_grad(params, batch, rule)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10


@pytest.mark.parametrize("precond", [lm.MetaSGD(), lm.KFO(psd=True), lm.KFO(psd=False)], ids=lambda p: p.name)
def test_matches_torch_autograd_with_meta_optimizers(precond):
    params, batch = _problem(5)
    rule = lm.InnerLoop(2, 0.2, "all")
    rng = np.random.default_rng(0)
    phi = tuple(tuple(p + 0.2 * rng.standard_normal(p.shape) for p in pl) for pl in precond.init(params, (0, 1, 2)))
    ref_val, ref_grads, ref_phi = torch_unrolled_meta_grad(params, batch, rule, precond, phi)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule, precond, phi)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10
    flat = [p for pl in mg.phi for p in pl]
    for a, b in zip(flat, ref_phi):
        assert rel_err(a, b) <= 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_engine_runs_on_torch_tensors(device):
    """The same array-API code runs on torch (CPU/CUDA) and agrees with numpy to round-off."""
    params, batch = _problem(6)
    rule = lm.InnerLoop(2, 0.2, "all")
    ref = meta_value_and_grad(params, batch.support, batch.query, rule, lm.KFO())
    tp = to_backend(params, "torch", device)
    tb = batch.to("torch", device)
    phi = tuple(to_backend(pl, "torch", device) for pl in lm.KFO().init(params, (0, 1, 2)))
    got = meta_value_and_grad(tp, tb.support, tb.query, rule, lm.KFO(), phi)
    assert isinstance(got.value, torch.Tensor) and got.value.dtype == torch.float64
    assert abs(float(got.value) - float(ref.value)) <= 1e-12 * abs(float(ref.value))
    for a, b in zip(got.params, ref.params):
        assert rel_err(to_numpy(a), b) <= 1e-12


def test_logistic_engine_on_torch_tensors():
    params, batch = _problem(7, logistic=True)
    rule = lm.InnerLoop(1, 0.5, "last")
    ref = meta_value_and_grad(params, batch.support, batch.query, rule)
    tb = batch.to("torch")
    got = meta_value_and_grad(to_backend(params, "torch"), tb.support, tb.query, rule)
    for a, b in zip(got.params, ref.params):
        assert rel_err(to_numpy(a), b) <= 1e-12


def test_squared_loss_data_form_matches_torch_autograd():
    """The data-form support/query losses: same meta-gradient as autograd through the unrolled loop."""
    rng = np.random.default_rng(77)
    T, d, out = 4, 5, 2
    support = lm.SquaredLoss(rng.standard_normal((T, 3, d)), rng.standard_normal((T, 3, out)))
    query = lm.SquaredLoss(rng.standard_normal((T, 6, d)), rng.standard_normal((T, 6, out)))
    params = lm.init_deep_linear(d, (4, 3), out, rng=rng, scale=0.8)
    rule = lm.InnerLoop(2, 0.2, "all")
    ref_val, ref_grads, _ = torch_unrolled_meta_grad(params, lm.MetaBatch(support.moments(), query.moments()), rule)
    mg = meta_value_and_grad(params, support, query, rule)
    assert abs(mg.value - ref_val) <= 1e-12 * abs(ref_val)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10
    # and the same engine code on torch tensors
    tmg = meta_value_and_grad(to_backend(params, "torch"), support.to("torch"), query.to("torch"), rule)
    for a, b in zip(tmg.params, mg.params):
        assert rel_err(to_numpy(a), b) <= 1e-12


@pytest.mark.parametrize("psd", [True, False])
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("layers", ["all", "last"])
def test_updating_kfo_matches_torch_autograd(psd, first_order, layers):
    """KFO factors adapting in the inner loop (Sha-Lab/kfo): same value and gradients as autograd."""
    params, batch = _problem(31 + 2 * psd + first_order, depth=2)
    precond = lm.KFO(psd=psd, update_factors=True)
    rule = lm.InnerLoop(3, 0.1, layers, first_order=first_order)
    rng = np.random.default_rng(5)
    phi = tuple(tuple(p + 0.1 * rng.standard_normal(p.shape) for p in pl)
                for pl in precond.init(params, rule.adapted_layers(len(params))))
    ref_val, ref_grads, ref_phi = torch_unrolled_meta_grad(params, batch, rule, precond, phi)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule, precond, phi)
    assert abs(mg.value - ref_val) <= 1e-12 * abs(ref_val)
    for a, b in zip(mg.params, ref_grads):
        assert rel_err(a, b) <= 1e-10
    flat = [p for pl in mg.phi for p in pl]
    assert len(flat) == len(ref_phi)
    for a, b in zip(flat, ref_phi):
        assert rel_err(a, b) <= 1e-10
