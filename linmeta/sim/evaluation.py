"""Held-out evaluation: fresh test sets and the post-adaptation loss of every run on every test task."""
from __future__ import annotations

import numpy as np  # noqa: F401  (array shapes in the docstrings)

from .. import _validate
from .._backend import backend_of, is_torch, to_numpy
from .._random import as_generator
from ..meta import adapted_map
from ..models import validate_params
from ..tasks import MetaBatch


def _check_batch(batch):
    _validate.instance("batch", batch, MetaBatch, "a linmeta.MetaBatch (e.g. from test_set or family.meta_batch)")


def on_backend_of(batch, params):
    """``batch`` moved to the backend, device and dtype of ``params`` (unchanged for numpy float64 parameters).

    Tasks are drawn on the host by numpy Generators; this moves a batch once to where the models live.
    """
    _check_batch(batch)
    params = validate_params(params)
    if not is_torch(params[0]) and str(params[0].dtype) == "float64":
        return batch
    return batch.to(backend_of(params[0]))


def test_set(family, K: int | None, n_tasks: int, rng, *, return_tasks: bool = False):
    """Fresh test tasks with one K-shot support set each and the population query.

    The draws are, in order: the tasks, then their support sets, all from ``rng`` (a Generator or
    anything :func:`linmeta.as_generator` takes, e.g. ``numpy.random.SeedSequence([seed, tag])`` for
    a test set independent of every training stream).

    Returns
    -------
    :class:`linmeta.MetaBatch` with support and query losses of ``n_tasks`` tasks; with
    ``return_tasks``, the pair ``(batch, tasks)`` with the :class:`linmeta.TaskBatch` drawn.
    """
    if not hasattr(family, "sample_tasks") or not hasattr(family, "meta_batch"):
        raise _validate.ArgumentTypeError(f"family must be a task family (GaussianRegression, TaskMixture, ...), got "
                                          f"{type(family).__name__}")
    _validate.optional_int("K", K, none="the population loss")
    n_tasks = _validate.positive_int("n_tasks", n_tasks)
    _validate.boolean("return_tasks", return_tasks)
    rng = as_generator(rng)
    tasks = family.sample_tasks(n_tasks, rng)
    batch = family.meta_batch(tasks, K, None, rng)
    return (batch, tasks) if return_tasks else batch


test_set.__test__ = False  # not a pytest test, despite its name


def post_adaptation_losses(params, batch, rule, precond=None, phi=None) -> np.ndarray:
    """Query loss after adapting on ``batch.support``, for every run and task.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}), on any backend.
    batch : :class:`linmeta.MetaBatch` with a task axis of size T (drawn on the host: it is moved to the
        parameters' backend).
    rule, precond, phi : the inner loop (see :func:`linmeta.adapted_map`).

    Returns
    -------
    numpy array (*runs, T).
    """
    _check_batch(batch)
    batch = on_backend_of(batch, params)
    return to_numpy(batch.query.value(adapted_map(params, batch.support, rule, precond, phi)))
