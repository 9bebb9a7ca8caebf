"""linmeta: closed forms and simulations of meta-learning on deep linear models.

The engine (numpy by default, torch optional) computes the MAML-family meta-objective of deep
linear networks and its exact gradient in batched closed form.  The facade holds its public names;
the subpackages are

* :mod:`linmeta.theory`       closed-form predictions (pure functions: no engine, no randomness);
* :mod:`linmeta.sim`          shared simulation: training with checkpoints, Monte Carlo estimates,
  statistics, representation measures;
* :mod:`linmeta.twolayer`     a separate engine for two-layer nonlinear networks;
* :mod:`linmeta.experiments`  the paper reproductions that compare the two, and their runner.

They are imported on first use (``lm.theory.shallow`` works after ``import linmeta as lm``).
See ``ARCHITECTURE.md`` for the layers and what may import what.
"""
__version__ = "0.1.0"

import importlib as _importlib

from ._backend import ArrayBackend, to_numpy
from ._backend import resolve as array_backend
from ._random import as_generator
from .losses import LogisticLoss, QuadraticLoss, SquaredLoss, sample_moments
from .meta import adapt, adapted_map, meta_loss, meta_value_and_grad, pre_adaptation_loss
from .models import end_to_end, init_deep_linear
from .preconditioners import KFO, Identity, MetaCurvature, MetaSGD, Preconditioner
from .reverse import MetaGradient
from .rule import InnerLoop
from .tasks import BinaryClassification, GaussianRegression, MetaBatch, TaskBatch, TaskMixture, meta_batch
from ._errors import DivergenceError
from .train import TrainResult, meta_train

_SUBPACKAGES = ("theory", "sim", "twolayer", "experiments")

__all__ = [
    "InnerLoop", "LogisticLoss", "QuadraticLoss", "SquaredLoss", "sample_moments", "MetaGradient", "adapt",
    "adapted_map", "meta_loss", "meta_value_and_grad", "pre_adaptation_loss", "end_to_end", "init_deep_linear",
    "KFO", "Identity", "MetaCurvature", "MetaSGD", "Preconditioner", "BinaryClassification", "GaussianRegression",
    "MetaBatch", "TaskBatch", "TaskMixture", "meta_batch", "DivergenceError", "TrainResult", "meta_train",
    "as_generator", "ArrayBackend", "array_backend", "to_numpy", "__version__", *_SUBPACKAGES,
]


def __getattr__(name):
    if name in _SUBPACKAGES:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'linmeta' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
