"""ANIL closed forms: votes, the one-step expected loss, the oracle, the head/body split in expectation (linmeta.theory.anil)."""
import numpy as np
import pytest

from linmeta import (GaussianRegression, InnerLoop, LogisticLoss, TaskBatch, adapted_map, end_to_end,
                     init_deep_linear, sample_moments)
from linmeta.sim.head_body import head_body_split
from linmeta.theory import anil, shallow

from ..helpers import central_diff_grad


def _family(rng, d=4, out=1, noise=0.3):
    Lm = rng.standard_normal((d, d))
    S = Lm @ Lm.T / d + 0.3 * np.eye(d)
    S /= np.linalg.eigvalsh(S)[-1]
    C = rng.standard_normal((out * d, out * d))
    return GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=C @ C.T / (out * d),
                              input_cov=S, noise_std=noise)


def _sigma_points(fam):
    """2·out·d tasks whose first and second moments are exactly those of the family's W*."""
    lam, U = np.linalg.eigh(fam.cov)
    root = U * np.sqrt(np.clip(lam, 0, None) * len(lam))
    W = np.array([fam.mean.reshape(-1) + s * root[:, i] for i in range(len(lam)) for s in (1.0, -1.0)])
    W = W.reshape(-1, fam.out, fam.d)
    return TaskBatch(W, np.broadcast_to(fam.input_cov, (len(W), fam.d, fam.d)), np.full(len(W), fam.noise_std))


# ---------------------------------------------------------------------------------------------- votes


def test_zero_head_vote_is_the_engines_anil_step():
    rng = np.random.default_rng(0)
    d, T, n, m = 5, 3, 7, 4
    params = init_deep_linear(d, (4, 3), 2, rng=rng)
    zero = params[:-1] + (np.zeros_like(params[-1]),)
    X, Y, Xq = rng.standard_normal((T, n, d)), rng.standard_normal((T, n, 2)), rng.standard_normal((T, m, d))
    engine = Xq @ np.swapaxes(adapted_map(zero, sample_moments(X, Y), InnerLoop(1, 0.2, "last")), -1, -2)
    vote = anil.zero_head_vote(anil.body_features(zero, X), Y, anil.body_features(zero, Xq), 0.2)
    assert np.max(np.abs(engine - vote)) <= 1e-12 * np.max(np.abs(engine))
    # written out: (α/n) Σ_j y_j ⟨φ_q, φ_j⟩
    Fs, Fq = anil.body_features(zero, X), anil.body_features(zero, Xq)
    manual = 0.2 / n * np.einsum("tqp,tjp,tjo->tqo", Fq, Fs, Y)
    assert np.max(np.abs(vote - manual)) <= 1e-12 * np.max(np.abs(manual))


def test_one_step_prediction_with_a_head_and_shallow_model():
    rng = np.random.default_rng(1)
    d, n = 4, 6
    params = init_deep_linear(d, (), 1, rng=rng)  # L = 1: features are the inputs themselves
    X, Y, Xq = rng.standard_normal((n, d)), rng.standard_normal((n, 1)), rng.standard_normal((3, d))
    M = adapted_map(params, sample_moments(X[None], Y[None]), InnerLoop(1, 0.3, "last"))[0]
    pred = anil.one_step_prediction(anil.body_features(params, X), Y, anil.body_features(params, Xq), 0.3,
                                    head=params[-1])
    assert np.max(np.abs(Xq @ M.T - pred)) <= 1e-12


def test_logistic_zero_head_vote_and_cosine_vote():
    rng = np.random.default_rng(2)
    d, n = 5, 8
    body = init_deep_linear(d, (3,), 1, rng=rng)[:-1] + (np.zeros((1, 3)),)
    X, Xq = rng.standard_normal((2, n, d)), rng.standard_normal((2, 4, d))
    y = (rng.random((2, n)) < 0.5).astype(float)
    logits = (Xq @ np.swapaxes(adapted_map(body, LogisticLoss(X, y), InnerLoop(1, 0.5, "last")), -1, -2))[..., 0]
    got = anil.logistic_zero_head_vote(anil.body_features(body, X), y, anil.body_features(body, Xq), 0.5)
    assert np.max(np.abs(logits - got)) <= 1e-12 * np.max(np.abs(logits))
    Fs, Fq, Y = rng.standard_normal((6, 3)), rng.standard_normal((2, 3)), rng.standard_normal((6, 1))
    cos = anil.cosine_vote(Fs, Y, Fq)
    scaled = anil.cosine_vote(Fs * rng.uniform(0.5, 2, (6, 1)), Y, 3.0 * Fq)  # invariant to feature norms
    assert np.max(np.abs(cos - scaled)) <= 1e-12
    cosines = (Fq / np.linalg.norm(Fq, axis=1, keepdims=True)) @ (Fs / np.linalg.norm(Fs, axis=1, keepdims=True)).T
    assert np.max(np.abs(cos - cosines @ Y / 6)) <= 1e-12


# ------------------------------------------------------------------------------------ expected loss


def test_one_step_quadratic_with_identity_is_shallow_maml():
    rng = np.random.default_rng(3)
    fam = _family(rng, d=4, out=2)
    for K in (None, 3, 10):
        a = anil.one_step_quadratic(np.eye(4), fam.input_cov, fam.noise_std, 2, K, 0.4)
        b = shallow.shallow_quadratic(fam.input_cov, fam.noise_std, 2, K, 0.4, 1)
        assert np.max(np.abs(a.A - b.A)) <= 1e-12 and abs(float(a.const) - float(b.const)) <= 1e-12


def test_expected_loss_over_the_family_equals_the_sigma_point_average():
    # the expected loss is quadratic in W*: averaging over sigma points is exact
    rng = np.random.default_rng(4)
    fam = _family(rng, d=4, out=2)
    params = init_deep_linear(4, (3,), 2, rng=rng, n_runs=3)
    tasks = _sigma_points(fam)
    for K in (None, 5):
        per_task = anil.anil_expected_task_loss(params, tasks, K, 0.3)  # (runs, T)
        assert np.max(np.abs(per_task.mean(-1) - anil.anil_expected_loss(params, fam, K, 0.3))) <= 1e-10
    nal = anil.nal_expected_loss(params, fam)
    pop = tasks.population().value(end_to_end(params)[:, None]).mean(-1)
    assert np.max(np.abs(nal - pop)) <= 1e-10 * np.max(nal)


def test_expected_task_loss_matches_monte_carlo():
    rng = np.random.default_rng(5)
    fam = _family(rng, d=4, out=1, noise=0.4)
    params = init_deep_linear(4, (3,), 1, rng=rng)
    tasks = fam.sample_tasks(20, rng)
    K, alpha, draws = 4, 0.35, 4000
    rep = tasks.take(np.tile(np.arange(20), draws))
    vals = rep.population().value(adapted_map(params, rep.moments(K, rng), InnerLoop(1, alpha, "last")))
    diff = vals.reshape(draws, 20) - anil.anil_expected_task_loss(params, tasks, K, alpha)
    assert abs(diff.mean()) <= 4 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_oracle_is_a_lower_bound_and_stationary():
    rng = np.random.default_rng(6)
    d, k, K, alpha = 8, 2, 5, 0.4
    B = np.linalg.qr(rng.standard_normal((d, k)))[0]
    fam = GaussianRegression(d=d, out=1, cov=0.7 * B @ B.T, noise_std=0.3)
    orc = anil.anil_oracle(fam, K, alpha)
    assert orc.rank == k
    # stationarity of ℒ(u) at u*: a central difference through the closed-form expected loss
    f = lambda u: float(anil.anil_expected_loss((np.sqrt(u[0] / alpha) * B.T, np.zeros((1, k))), fam, K, alpha))
    assert abs(central_diff_grad(f, np.array([orc.step]), h=1e-4)[0]) <= 1e-8
    # lower bound: random deep bodies and heads (and the oracle direction with a wrong scale) do worse
    for s in range(20):
        p = init_deep_linear(d, (6, 4), 1, rng=rng, scale=rng.uniform(0.3, 2.0))
        assert anil.anil_expected_loss(p, fam, K, alpha) >= orc.loss
    assert f([1.3 * orc.step]) > orc.loss
    # isotropic family with a mean: M = E[W*], R = (u*/α) I
    iso = GaussianRegression(d=d, out=1, mean=rng.standard_normal((1, d)), cov=0.2, noise_std=0.3)
    o2 = anil.anil_oracle(iso, K, alpha)
    mean = iso.mean
    body = np.sqrt(o2.step / alpha) * np.eye(d)
    assert abs(float(anil.anil_expected_loss((body, mean / np.sqrt(o2.step / alpha)), iso, K, alpha)) - o2.loss) \
        <= 1e-10 * o2.loss
    assert anil.anil_oracle(iso, None, alpha).loss == pytest.approx(0.5 * 0.3**2, rel=1e-14)


# ---------------------------------------------------------------------------------- head/body split


def test_two_layer_split_expectation_equals_sigma_point_average():
    rng = np.random.default_rng(8)
    fam = _family(rng, d=4, out=2)
    params = init_deep_linear(4, (3,), 2, rng=rng, n_runs=2)
    pop = _sigma_points(fam).population()
    s = head_body_split(params, pop, pop, 0.3)
    ex = anil.two_layer_split_expectation(params, fam, 0.3)
    for k in ("head", "body", "head_linear", "body_linear"):
        assert np.max(np.abs(getattr(s, k).mean(-1) - ex[k])) <= 1e-10 * np.max(np.abs(ex[k]))


@pytest.mark.parametrize("call, match", [
    (lambda: anil.zero_head_vote(np.ones((3, 2)), np.ones((4, 1)), np.ones((2, 2)), 0.1), "same n"),
    (lambda: anil.zero_head_vote(np.ones((3, 2)), np.ones((3, 1)), np.ones((2, 5)), 0.1), "feature size"),
    (lambda: anil.one_step_prediction(np.ones((3, 2)), np.ones((3, 1)), np.ones((2, 2)), 0.1, head=np.ones((1, 3))),
     "head must have shape"),
    (lambda: anil.cosine_vote(np.zeros((3, 2)), np.ones((3, 1)), np.ones((2, 2))), "non-zero"),
    (lambda: anil.one_step_quadratic(-np.eye(3), np.eye(3), 0.1, 1, 5, 0.1), "positive semi-definite"),
    (lambda: anil.one_step_quadratic(np.eye(3), np.eye(3), 0.1, 1, 0, 0.1), "K must be a positive"),
    (lambda: anil.anil_oracle(GaussianRegression(d=3, out=2), 5, 0.1), "out = 1"),
    (lambda: anil.anil_oracle(GaussianRegression(d=3, cov=np.diag([1.0, 2.0, 0.0])), 5, 0.1), "equal non-zero"),
    (lambda: anil.anil_oracle(GaussianRegression(d=3, input_cov=2 * np.eye(3)), 5, 0.1), "input_cov = I"),
    (lambda: anil.two_layer_split_expectation(init_deep_linear(3, (2, 2), 1, rng=0), GaussianRegression(d=3), 0.1),
     "exactly 2 layers"),
    (lambda: anil.anil_expected_loss(init_deep_linear(3, (2,), 1, rng=0), object(), 5, 0.1), "GaussianRegression"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
