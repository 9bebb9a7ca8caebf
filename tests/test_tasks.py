"""Task families, sampling and moments (linmeta.tasks)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.tasks import TaskBatch


def test_population_moments_match_large_sample_within_se():
    rng = np.random.default_rng(0)
    L = rng.standard_normal((3, 3))
    fam = lm.GaussianRegression(d=3, out=2, input_cov=L @ L.T + 0.1 * np.eye(3), noise_std=0.7)
    tasks = fam.sample_tasks(2, rng)
    n = 200_000
    X, Y = tasks.sample_data(n, rng)
    pop = tasks.population()
    # per-sample contributions to each moment, so SEs come from the samples themselves
    a = X[..., :, None] * X[..., None, :]
    b = X[..., :, None] * Y[..., None, :]
    c = 0.5 * np.sum(Y * Y, axis=-1)
    for samp, exact in ((a, pop.A), (b, pop.B), (c, pop.c)):
        mean = samp.mean(axis=1)
        se = samp.std(axis=1, ddof=1) / np.sqrt(n)
        assert np.all(np.abs(mean - exact) <= 4.5 * se + 1e-15)


def test_task_distribution_mean_and_cov():
    rng = np.random.default_rng(1)
    mean = rng.standard_normal((2, 3))
    C = np.diag([1.0, 2.0, 0.5])
    fam = lm.GaussianRegression(d=3, out=2, mean=mean, cov=C)
    w = fam.sample_tasks(100_000, rng).w_star
    se = np.sqrt(np.diag(C))[None, :] / np.sqrt(len(w))
    assert np.all(np.abs(w.mean(0) - mean) <= 4.5 * se)
    emp = np.cov(w[:, 1, :].T)
    assert np.allclose(emp, C, atol=4.5 * np.sqrt(2 / len(w)) * 2)


def test_same_seed_same_tasks_and_data():
    fam = lm.GaussianRegression(d=4, out=2, noise_std=0.3)
    a = lm.meta_batch(fam.sample_tasks(5, 3), 4, 6, 7)
    b = lm.meta_batch(fam.sample_tasks(5, 3), 4, 6, 7)
    for x, y in ((a.support.A, b.support.A), (a.query.B, b.query.B), (a.support.c, b.support.c)):
        assert np.array_equal(x, y)


def test_run_axis_and_population_query():
    fam = lm.GaussianRegression(d=3)
    tasks = fam.sample_tasks(4, 0, n_runs=2)
    assert tasks.w_star.shape == (2, 4, 1, 3)
    mb = lm.meta_batch(tasks, None, None, 0)
    assert np.array_equal(mb.support.A, mb.query.A)


def test_mixture_labels_and_components():
    easy = lm.GaussianRegression(d=2, mean=np.array([[5.0, 0.0]]), cov=0.0, input_cov=np.eye(2))
    hard = lm.GaussianRegression(d=2, mean=np.array([[0.0, 5.0]]), cov=0.0, input_cov=0.1 * np.eye(2))
    mix = lm.TaskMixture((easy, hard), (0.3, 0.7))
    tasks, labels = mix.sample_tasks(4000, 0, return_labels=True)
    assert abs(labels.mean() - 0.7) <= 4 * np.sqrt(0.21 / 4000)
    assert np.allclose(tasks.w_star[labels == 0], easy.mean)
    assert np.allclose(tasks.input_cov[labels == 1], 0.1 * np.eye(2))
    assert np.allclose(mix.mean_task(), 0.3 * easy.mean + 0.7 * hard.mean)


def test_binary_classification_labels():
    fam = lm.BinaryClassification(d=3, label_noise=0.0)
    w = fam.sample_tasks(3, 0)
    loss = fam.sample_loss(w, 50, 1)
    assert np.array_equal(loss.y, ((loss.X @ np.swapaxes(w, -1, -2))[..., 0] > 0).astype(float))
    noisy = lm.BinaryClassification(d=3, label_noise=0.25).sample_loss(w, 20_000, 2)
    clean = ((noisy.X @ np.swapaxes(w, -1, -2))[..., 0] > 0)
    flips = np.mean(noisy.y != clean)
    assert abs(flips - 0.25) <= 4 * np.sqrt(0.25 * 0.75 / noisy.y.size)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d=0), "d must be a positive"),
        (dict(d=3, out=-1), "out must be a positive"),
        (dict(d=2, input_cov=np.array([[1.0, 2.0], [2.0, 1.0]])), "positive semi-definite"),
        (dict(d=2, input_cov=np.array([[1.0, 0.5], [0.0, 1.0]])), "symmetric"),
        (dict(d=2, input_cov=np.array([[np.nan, 0], [0, 1.0]])), "non-finite"),
        (dict(d=2, cov=np.eye(3)), "cov must be"),
        (dict(d=2, mean=np.zeros((2, 2))), "mean must have shape"),
        (dict(d=2, noise_std=-1.0), "noise_std must be non-negative"),
        (dict(d=2.5), "d must be an integer"),
    ],
)
def test_bad_family_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lm.GaussianRegression(**kwargs)


def test_bad_sampling_arguments():
    fam = lm.GaussianRegression(d=2)
    with pytest.raises(ValueError, match="n_tasks"):
        fam.sample_tasks(0, 0)
    with pytest.raises(ValueError, match="rng"):
        fam.sample_tasks(3, None)
    with pytest.raises(ValueError, match="n must be a positive"):
        fam.sample_tasks(3, 0).sample_data(-2, 0)
    with pytest.raises(ValueError, match="w_star contains"):
        TaskBatch(np.full((2, 1, 2), np.inf), np.eye(2), 0.0)
    with pytest.raises(ValueError, match="weights"):
        lm.TaskMixture((fam, fam), (0.5, 0.6))
    with pytest.raises(ValueError, match="label_noise"):
        lm.BinaryClassification(d=2, label_noise=0.7)
    with pytest.raises(ValueError, match="K and Q"):
        lm.BinaryClassification(d=2).meta_batch(np.zeros((1, 1, 2)), None, 3, 0)


def test_low_rank_family_stays_in_its_span():
    rng = np.random.default_rng(5)
    B = np.linalg.qr(rng.standard_normal((6, 2)))[0]
    fam = lm.GaussianRegression(d=6, cov=B @ B.T)
    w = fam.sample_tasks(200, rng).w_star[:, 0, :]
    leak = w - (w @ B) @ B.T
    assert np.max(np.abs(leak)) <= 1e-13
