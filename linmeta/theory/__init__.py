"""Closed forms: pure functions of task-family descriptions and parameters (no engine, no random numbers).

One module per topic (``import linmeta.theory`` imports them all):

* :mod:`~linmeta.theory.shallow`          exact expected K-shot meta-loss of the shallow model, its optimum,
  floor and optimal step;
* :mod:`~linmeta.theory.deep_one_step`    exact expected K-shot loss of deep linear models after one step;
* :mod:`~linmeta.theory.gaussian_moments` and :mod:`~linmeta.theory.wick`  the Gaussian/Wishart moments
  behind them;
* :mod:`~linmeta.theory.depth`            the two-parameter model ``ŷ = w₂w₁x`` in closed form;
* :mod:`~linmeta.theory.precondition`     the implicit preconditioner of a deep linear inner step;
* :mod:`~linmeta.theory.metaopt`          optimal explicit meta-optimizers (Meta-SGD, KFO, Meta-Curvature);
* :mod:`~linmeta.theory.anil`             ANIL and NIL in closed form;
* :mod:`~linmeta.theory.similarity`       population CKA / CCA and subspace distance;
* :mod:`~linmeta.theory.landscape`        the easy/hard task landscape: MAML vs NAL optima, gain, bound;
* :mod:`~linmeta.theory.negative_lr`      Bernacchia's test loss of MAML against its two learning rates;
* :mod:`~linmeta.theory.tradeoff`         Gao & Sener's exact expected loss after a test-time step;
* :mod:`~linmeta.theory.multistep_stability`  the exact stability region of N-step MAML meta-training;
* :mod:`~linmeta.theory.fo_bias`          FO-MAML's fixed-point bias and when it vanishes;
* :mod:`~linmeta.theory.separation`       the convex/non-convex sample-complexity separation on line tasks.

Every closed form has a sympy derivation in ``derivations/`` and a simulation check in an
experiment; ``tests/test_architecture.py`` keeps this package free of the engine and of randomness.
"""
from . import (anil, deep_one_step, depth, fo_bias, gaussian_moments, landscape, metaopt, multistep_stability,
               negative_lr, precondition, separation, shallow, similarity, tradeoff, wick)

__all__ = ["anil", "deep_one_step", "depth", "fo_bias", "gaussian_moments", "landscape", "metaopt",
           "multistep_stability", "negative_lr", "precondition", "separation", "shallow", "similarity", "tradeoff",
           "wick"]
