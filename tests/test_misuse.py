"""The misuse battery (issue 13): every bad input gets a clear error, and nothing non-finite leaves linmeta.

Part 1 (``BAD``) is a table of bad calls over every public function of the library side (the ``linmeta``
facade, ``linmeta.theory.*``, ``linmeta.sim.*``, the preconditioners, task families, losses and
``meta_train``).  Each row gives the exception type -- ``ValueError`` for a bad value, ``TypeError`` for a
bad type (linmeta's :class:`~linmeta._validate.ArgumentTypeError` is both), ``DivergenceError`` for a
computation that diverges -- and a regex that the message must match: it names the argument as the caller
wrote it (``phi[0][0]``, ``layers[1]``, ``K``, ...).  No row may end in another exception (AttributeError,
IndexError, a raw numpy message) or in a return.

Part 2 (``EDGE``) runs public calls on finite but extreme inputs (huge or negative alpha, tiny and huge
scales, zero and degenerate matrices, long inner loops) and asserts that each returns finite values or
raises a clear error (``ValueError`` / ``DivergenceError`` with linmeta's own message): never a silent
NaN or inf.

Part 3 is one test per defect of the issue (1-14; 15-22 are the CLI's, in ``tests/test_cli.py``), and
a hypothesis property over integer arguments.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import linmeta as lm
from linmeta import preconditioners as pc
from linmeta._validate import ArgumentTypeError
from linmeta.sim import evaluation, families, head_body, montecarlo, representations, stats, training
from linmeta.theory import (anil, deep_one_step, depth, gaussian_moments, landscape, metaopt, precondition, shallow,
                            similarity, wick)

try:
    import torch
except ImportError:  # pragma: no cover - torch comes with the test extra
    torch = None

V, T, D = ValueError, TypeError, lm.DivergenceError
NAN, INF = float("nan"), float("inf")

# --------------------------------------------------------------------------------------------- setup
# the setup, and a few more objects to misuse
P = lm.init_deep_linear(3, (4,), 1, rng=2)
P1 = lm.init_deep_linear(3, (), 1, rng=2)
P3 = lm.init_deep_linear(3, (4, 2), 1, rng=2)
FAM = lm.GaussianRegression(d=3)
TASKS = FAM.sample_tasks(5, 0)
B = lm.meta_batch(TASKS, 6, None, 1)
R = lm.InnerLoop(steps=1)
BIN = lm.BinaryClassification(d=3)
WBIN = BIN.sample_tasks(4, 0)
MIX = lm.TaskMixture((FAM, lm.GaussianRegression(d=3, input_cov=2 * np.eye(3))), (0.5, 0.5))
TC = landscape.TwoCluster(p_hard=0.5, rho_hard=0.5, rho_easy=1.0, alpha=0.1, distance=1.0, radius_hard=0.5,
                          radius_easy=0.5, d=3)
TC_RUNS = families.TwoClusterRuns((TC, TC))
EYE3 = np.eye(3)
NONSYM = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
NEG = -np.eye(3)
G = np.ones((1, 3))  # an end-to-end gradient (out, d)
X46 = np.random.default_rng(0).standard_normal((6, 4))


def _q(A=None, Bm=None, c=None, T_=2):
    """A QuadraticLoss with one argument replaced."""
    A = np.broadcast_to(EYE3, (T_, 3, 3)).copy() if A is None else A
    Bm = np.zeros((T_, 3, 1)) if Bm is None else Bm
    c = np.zeros(T_) if c is None else c
    return lm.QuadraticLoss(A, Bm, c)


def _tb(w=None, cov=None, noise=0.1):
    return lm.TaskBatch(np.zeros((2, 1, 3)) if w is None else w, EYE3 if cov is None else cov, noise)


def _mt(**kw):
    """meta_train on the issue's setup, with a keyword replaced (small, so a bad run would still be quick)."""
    args = dict(params=P, family=FAM, rule=R, steps=2, eval_tasks=4, tasks_per_step=4, K=3, Q=None)
    args.update(kw)
    return lm.meta_train(args.pop("params"), args.pop("family"), args.pop("rule"), **args)


def _phi_msgd(W0=None):
    return ((np.ones((4, 3)) if W0 is None else W0,), (np.ones((1, 4)),))


# ------------------------------------------------------------------------------------ part 1: bad calls
# (id, call, exception type, regex the message must match)
BAD = [
    # --- InnerLoop
    ("rule-steps-negative", lambda: lm.InnerLoop(steps=-1), V, r"steps must be a non-negative integer"),
    ("rule-steps-float", lambda: lm.InnerLoop(steps=1.5), T, r"^steps must be an integer"),
    ("rule-steps-bool", lambda: lm.InnerLoop(steps=True), T, r"^steps must be an integer"),
    ("rule-steps-str", lambda: lm.InnerLoop(steps="2"), T, r"^steps must be an integer"),
    ("rule-alpha-nan", lambda: lm.InnerLoop(alpha=NAN), V, r"^alpha must be finite"),
    ("rule-alpha-inf", lambda: lm.InnerLoop(alpha=-INF), V, r"^alpha must be finite"),
    ("rule-alpha-str", lambda: lm.InnerLoop(alpha="0.1"), T, r"^alpha must be a real number"),
    ("rule-alpha-complex", lambda: lm.InnerLoop(alpha=0.1j), T, r"^alpha must be a real number.*complex"),
    ("rule-alpha-bool", lambda: lm.InnerLoop(alpha=True), T, r"^alpha must be a real number"),
    ("rule-layers-name", lambda: lm.InnerLoop(layers="top"), V, r"^layers must be one of"),
    ("rule-layers-1.5", lambda: lm.InnerLoop(layers=(1.5,)), T, r"^layers\[0\] must be an integer layer index"),
    ("rule-layers-True", lambda: lm.InnerLoop(layers=(True,)), T, r"^layers\[0\] must be an integer layer index"),
    ("rule-layers-0.9", lambda: lm.InnerLoop(layers=(0, 0.9)), T, r"^layers\[1\] must be an integer layer index"),
    ("rule-layers-str", lambda: lm.InnerLoop(layers=("a",)), T, r"^layers\[0\] must be an integer layer index"),
    ("rule-layers-int", lambda: lm.InnerLoop(layers=1), T, r"^layers must be one of .* or a tuple"),
    ("rule-layers-None", lambda: lm.InnerLoop(layers=None), T, r"^layers must be one of"),
    ("rule-layers-dup", lambda: lm.InnerLoop(layers=(0, 0)), V, r"^layers lists an index twice"),
    ("rule-first-order-int", lambda: lm.InnerLoop(first_order=1), T, r"^first_order must be True or False"),
    ("rule-first-order-str", lambda: lm.InnerLoop(first_order="yes"), T, r"^first_order must be True or False"),
    ("rule-inner-loss", lambda: lm.InnerLoop(inner_loss="query"), V, r"^inner_loss must be one of"),
    ("rule-first-order-no-loop", lambda: lm.InnerLoop(steps=0, first_order=True), V, r"first_order=True needs"),
    ("rule-index-range", lambda: lm.InnerLoop(layers=(5,)).adapted_layers(2), V, r"layers contains index 5"),
    ("rule-index-alias", lambda: lm.InnerLoop(layers=(0, -2)).adapted_layers(2), V, r"layers \(0, -2\) name the same"),
    ("rule-depth", lambda: lm.InnerLoop().adapted_layers(0), V, r"^depth must be a positive integer"),
    # --- init_deep_linear, end_to_end
    ("init-d-zero", lambda: lm.init_deep_linear(0, (), 1), V, r"^d must be a positive integer"),
    ("init-d-float", lambda: lm.init_deep_linear(3.0, (), 1), T, r"^d must be an integer.*pass 3"),
    ("init-widths-int", lambda: lm.init_deep_linear(3, 32, 1, rng=0), T, r"^widths must be a sequence of ints"),
    ("init-widths-zero", lambda: lm.init_deep_linear(3, (0,), 1, rng=0), V, r"^widths\[0\] must be a positive"),
    ("init-widths-float", lambda: lm.init_deep_linear(3, (4, 2.5), 1, rng=0), T, r"^widths\[1\] must be an integer"),
    ("init-widths-str", lambda: lm.init_deep_linear(3, "4", 1, rng=0), T, r"^widths must be a sequence of ints"),
    ("init-out-zero", lambda: lm.init_deep_linear(3, (), 0, rng=0), V, r"^out must be a positive integer"),
    ("init-scheme", lambda: lm.init_deep_linear(3, (), 1, scheme="xavier", rng=0), V, r"^scheme must be one of"),
    ("init-scale-negative", lambda: lm.init_deep_linear(3, (), 1, scale=-1, rng=0), V, r"^scale must be non-negative"),
    ("init-scale-nan", lambda: lm.init_deep_linear(3, (), 1, scale=NAN, rng=0), V, r"^scale must be finite"),
    ("init-n-runs-zero", lambda: lm.init_deep_linear(3, (), 1, n_runs=0, rng=0), V, r"^n_runs must be a positive"),
    ("init-n-runs-float", lambda: lm.init_deep_linear(3, (), 1, n_runs=2.0, rng=0), T, r"^n_runs must be an integer"),
    ("init-rng-None", lambda: lm.init_deep_linear(3, (), 1, rng=None), V, r"^rng must be a numpy.random.Generator"),
    ("init-rng-negative", lambda: lm.init_deep_linear(3, (), 1, rng=-1), V, r"^rng must be a numpy.random.Generator"),
    ("init-rng-float", lambda: lm.init_deep_linear(3, (), 1, rng=1.5), T, r"^rng must be a numpy.random.Generator"),
    ("init-backend", lambda: lm.init_deep_linear(3, (), 1, rng=0, backend="jax"), V, r"^backend must be one of"),
    ("init-dtype", lambda: lm.init_deep_linear(3, (), 1, rng=0, dtype="float16"), V, r"^dtype must be one of"),
    ("init-device", lambda: lm.init_deep_linear(3, (), 1, rng=0, device="cuda"), V, r"^device='cuda' needs backend"),
    ("e2e-None", lambda: lm.end_to_end(None), T, r"^params must be a non-empty tuple"),
    ("e2e-empty", lambda: lm.end_to_end(()), T, r"^params must be a non-empty tuple"),
    ("e2e-chain", lambda: lm.end_to_end((np.zeros((2, 3)), np.zeros((1, 3)))), V, r"^params\[1\] takes inputs"),
    ("as-generator-None", lambda: lm.as_generator(None), V, r"^rng must be"),
    ("as-generator-str", lambda: lm.as_generator("seed"), T, r"^rng must be"),
    ("as-generator-list", lambda: lm.as_generator([1, -2]), V, r"^rng must be"),
    ("array-backend-name", lambda: lm.array_backend("jax"), V, r"^backend must be one of"),
    ("array-backend-dtype", lambda: lm.array_backend(dtype="int8"), V, r"^dtype must be one of"),
    ("array-backend-device", lambda: lm.array_backend("torch", device="tpu"), V, r"^device must be"),
    # --- the engine's entry points: params, rule, losses, preconditioner, phi
    ("meta-params-lists", lambda: lm.meta_loss([[1.0, 2.0, 3.0]], B.support, B.query, R), T,
     r"^params\[0\] must be a numpy array or a torch tensor"),
    ("meta-params-ndarray", lambda: lm.meta_loss(np.zeros((1, 3)), B.support, B.query, R), T,
     r"^params must be a non-empty tuple"),
    ("meta-params-empty", lambda: lm.meta_loss((), B.support, B.query, R), V, r"^params must be a non-empty tuple"),
    ("meta-params-nan", lambda: lm.meta_loss((np.full((4, 3), NAN), P[1]), B.support, B.query, R), V,
     r"^params\[0\] contains 12 non-finite"),
    ("meta-params-inf", lambda: lm.meta_loss((P[0], np.full((1, 4), INF)), B.support, B.query, R), V,
     r"^params\[1\] contains 4 non-finite"),
    ("meta-params-empty-layer", lambda: lm.meta_loss((np.zeros((0, 3)),), B.support, B.query, R), V,
     r"^params\[0\] has shape \(0, 3\)"),
    ("meta-params-object", lambda: lm.meta_loss((np.array([[None] * 3]),), B.support, B.query, R), T,
     r"^params\[0\] must hold floating-point numbers"),
    ("meta-params-bool", lambda: lm.meta_loss((np.ones((1, 3), bool),), B.support, B.query, R), T,
     r"^params\[0\] must hold floating-point numbers"),
    ("meta-params-vector", lambda: lm.meta_loss((np.ones(3),), B.support, B.query, R), V,
     r"^params\[0\] must be a matrix"),
    ("meta-params-runs", lambda: lm.meta_loss((np.zeros((2, 4, 3)), np.zeros((3, 1, 4))), B.support, B.query, R), V,
     r"^params\[1\] has run shape \(3,\)"),
    ("meta-params-chain", lambda: lm.meta_loss((np.zeros((4, 3)), np.zeros((1, 5))), B.support, B.query, R), V,
     r"^params\[1\] takes inputs of size 5"),
    ("meta-rule-None", lambda: lm.meta_loss(P, B.support, B.query, None), T, r"^rule must be a linmeta.InnerLoop"),
    ("meta-rule-str", lambda: lm.meta_value_and_grad(P, B.support, B.query, "maml"), T, r"^rule must be"),
    ("meta-support-None", lambda: lm.meta_value_and_grad(P, None, B.query, R), T, r"^support must be a loss object"),
    ("meta-support-str", lambda: lm.meta_loss(P, "support", B.query, R), T, r"^support must be a loss object"),
    ("meta-support-batch", lambda: lm.meta_loss(P, B, B.query, R), T, r"^support must be a loss object"),
    ("meta-query-None", lambda: lm.meta_loss(P, B.support, None, R), T, r"^query must be a loss object"),
    ("meta-vg-query-None", lambda: lm.meta_value_and_grad(P, B.support, None, R), T, r"^query must be a loss object"),
    ("meta-support-d", lambda: lm.meta_loss(P, lm.meta_batch(lm.GaussianRegression(d=4).sample_tasks(5, 0), 6, None,
                                                              1).support, B.query, R), V,
     r"^support tasks have d=4"),
    ("meta-task-count", lambda: lm.meta_loss(P, B.support, lm.meta_batch(FAM.sample_tasks(3, 0), None, None,
                                                                         0).query, R), V,
     r"support has 5 tasks but query has 3"),
    ("meta-support-runs", lambda: lm.meta_loss(P, lm.meta_batch(FAM.sample_tasks(5, 0, n_runs=2), 6, None,
                                                                 1).support, B.query, R), V,
     r"^support has leading run shape \(2,\)"),
    ("meta-support-no-task-axis", lambda: lm.meta_loss(P1, lm.QuadraticLoss(EYE3, np.zeros((3, 1)), 0.0), B.query,
                                                        R), V, r"^support has no task axis"),
    ("meta-precond-name", lambda: lm.meta_loss(P, B.support, B.query, R, "adam"), V, r"^precond must be"),
    ("meta-precond-int", lambda: lm.meta_loss(P, B.support, B.query, R, 3), V, r"^precond must be"),
    ("meta-phi-array", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", np.ones((4, 3))), T,
     r"^phi must be None .* or a tuple"),
    ("meta-phi-length", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", ((np.ones((4, 3)),),)), V,
     r"^phi must have one entry per layer \(2\)"),
    ("meta-phi-entry-type", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", (np.ones((4, 3)), ())), T,
     r"^phi\[0\] must be a tuple of arrays"),
    ("meta-phi-count", lambda: lm.meta_loss(P, B.support, B.query, R, "kfo", ((np.eye(4),), (np.eye(1), np.eye(4)))),
     V, r"^phi\[0\] must hold 2 array\(s\) for kfo"),
    ("meta-phi-shape", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", _phi_msgd(np.ones((3, 3)))), V,
     r"^phi\[0\]\[0\] must have shape \(4, 3\)"),
    ("meta-phi-nan", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", _phi_msgd(np.full((4, 3), NAN))), V,
     r"^phi\[0\]\[0\] contains 12 non-finite"),
    ("meta-phi-list", lambda: lm.meta_loss(P, B.support, B.query, R, "meta-sgd", (([[1.0] * 3] * 4,), (np.ones((1, 4)),))),
     T, r"^phi\[0\]\[0\] must be a numpy array"),
    ("meta-phi-frozen-layer", lambda: lm.meta_loss(P, B.support, B.query, lm.InnerLoop(1, 0.1, "last"), "meta-sgd",
                                                   _phi_msgd()), V,
     r"^phi\[0\] must hold 0 array\(s\) .*a layer that does not adapt"),
    ("adapt-support-None", lambda: lm.adapt(P, None, R), T, r"^support must be a loss object"),
    ("adapted-map-rule", lambda: lm.adapted_map(P, B.support, None), T, r"^rule must be"),
    ("pre-adapt-query", lambda: lm.pre_adaptation_loss(P, None), T, r"^query must be a loss object"),
    ("pre-adapt-params", lambda: lm.pre_adaptation_loss(None, B.query), T, r"^params must be a non-empty tuple"),
    # divergence in the engine (defect 4)
    ("diverge-alpha-1e200", lambda: lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(2, 1e200)), D,
     r"inner loop diverged .*alpha = 1e\+200"),
    ("diverge-alpha-50", lambda: lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(3, 50.0)), D,
     r"inner loop diverged \(the meta-loss exploded\)"),
    ("diverge-meta-loss", lambda: lm.meta_loss(P, B.support, B.query, lm.InnerLoop(1, 1e300)), D,
     r"inner loop diverged"),
    ("diverge-adapt", lambda: lm.adapt(P, B.support, lm.InnerLoop(6, 1e300)), D, r"inner loop diverged"),
    ("diverge-adapted-map", lambda: lm.adapted_map(P, B.support, lm.InnerLoop(5, -1e300)), D, r"inner loop diverged"),
    ("diverge-kfo", lambda: lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(3, 1e120), "kfo-updating"), D,
     r"inner loop diverged"),
    # --- losses
    ("quad-A-nan", lambda: _q(A=np.full((2, 3, 3), NAN)), V, r"^A contains 18 non-finite"),
    ("quad-A-nonsym", lambda: _q(A=np.stack([EYE3, NONSYM])), V, r"^A must be symmetric"),
    ("quad-A-nonpsd", lambda: _q(A=np.stack([EYE3, NEG])), V, r"^A must be positive semi-definite"),
    ("quad-A-shape", lambda: _q(A=np.zeros((2, 3, 2))), V, r"^A must have shape \(\*batch, T, d, d\)"),
    ("quad-A-vector", lambda: lm.QuadraticLoss(np.ones(3), np.zeros((3, 1)), 0.0), V, r"^A must have shape"),
    ("quad-A-empty", lambda: _q(A=np.zeros((0, 3, 3)), Bm=np.zeros((0, 3, 1)), c=np.zeros(0)), V,
     r"^A has shape \(0, 3, 3\)"),
    ("quad-A-complex", lambda: _q(A=np.broadcast_to(EYE3, (2, 3, 3)) * (1 + 0j)), T, r"^A must be a real array.*complex"),
    ("quad-A-str", lambda: _q(A=np.full((2, 3, 3), "1")), T, r"^A must be a real array.*not numeric"),
    ("quad-A-ragged", lambda: lm.QuadraticLoss([[1.0], [1.0, 2.0]], np.zeros((1, 1)), 0.0), V,
     r"^A must be a rectangular array"),
    ("quad-B-shape", lambda: _q(Bm=np.zeros((2, 4, 1))), V, r"^B must have shape \(\*batch, T, d, out\)"),
    ("quad-B-out-zero", lambda: _q(Bm=np.zeros((2, 3, 0))), V, r"^B must have shape .*out >= 1"),
    ("quad-B-nan", lambda: _q(Bm=np.full((2, 3, 1), NAN)), V, r"^B contains 6 non-finite"),
    ("quad-c-shape", lambda: _q(c=np.zeros(3)), V, r"^c must have shape \(\*batch, T\) = \(2,\)"),
    ("quad-c-inf", lambda: _q(c=np.array([0.0, INF])), V, r"^c contains 1 non-finite"),
    ("logit-X-nan", lambda: lm.LogisticLoss(np.full((2, 4, 3), NAN), np.zeros((2, 4))), V, r"^X contains 24 non-finite"),
    ("logit-y-5", lambda: lm.LogisticLoss(np.ones((2, 4, 3)), np.full((2, 4), 5.0)), V, r"^y must hold labels in \[0, 1\]"),
    ("logit-y-negative", lambda: lm.LogisticLoss(np.ones((2, 4, 3)), -np.ones((2, 4))), V, r"^y must hold labels"),
    ("logit-y-shape", lambda: lm.LogisticLoss(np.ones((2, 4, 3)), np.zeros((2, 5))), V,
     r"^y must have shape \(\*batch, T, n\) = \(2, 4\)"),
    ("logit-y-nan", lambda: lm.LogisticLoss(np.ones((2, 4, 3)), np.full((2, 4), NAN)), V, r"^y contains 8 non-finite"),
    ("logit-y-complex", lambda: lm.LogisticLoss(np.ones((2, 4, 3)), np.zeros((2, 4), complex)), T, r"^y must be a real"),
    ("logit-X-2d", lambda: lm.LogisticLoss(np.ones((4, 3)), np.zeros(4)), V, r"^X must have shape \(\*batch, T, n, d\)"),
    ("logit-X-empty", lambda: lm.LogisticLoss(np.ones((2, 0, 3)), np.zeros((2, 0))), V, r"^X has shape \(2, 0, 3\)"),
    ("logit-X-complex", lambda: lm.LogisticLoss(np.ones((2, 4, 3)) * 1j, np.zeros((2, 4))), T, r"^X must be a real"),
    ("sq-no-samples", lambda: lm.SquaredLoss(np.zeros((2, 0, 3)), np.zeros((2, 0, 1))), V, r"^X has shape \(2, 0, 3\)"),
    ("sq-no-tasks", lambda: lm.SquaredLoss(np.zeros((0, 4, 3)), np.zeros((0, 4, 1))), V, r"^X has shape \(0, 4, 3\)"),
    ("sq-Y-shape", lambda: lm.SquaredLoss(np.zeros((2, 3, 4)), np.zeros((2, 4, 1))), V, r"^X \(\*batch, T, n, d\) and Y"),
    ("sq-Y-nan", lambda: lm.SquaredLoss(np.zeros((2, 3, 4)), np.full((2, 3, 1), NAN)), V, r"^Y contains 6 non-finite"),
    ("sq-Y-out-zero", lambda: lm.SquaredLoss(np.zeros((2, 3, 4)), np.zeros((2, 3, 0))), V, r"and Y .*out >= 1"),
    ("sq-X-bool", lambda: lm.SquaredLoss(np.zeros((2, 3, 4), bool), np.zeros((2, 3, 1))), T, r"^X must be a real array"),
    ("moments-X-nan", lambda: lm.sample_moments(np.full((2, 3, 4), NAN), np.zeros((2, 3, 1))), V, r"^X contains"),
    ("moments-shapes", lambda: lm.sample_moments(np.zeros((2, 3, 4)), np.zeros((2, 5, 1))), V, r"^X \(\*batch, T, n, d\) and Y"),
    ("loss-take-range", lambda: B.support.take([7]), V, r"^index holds positions outside 0..4"),
    ("loss-take-float", lambda: B.support.take(1.5), T, r"^index must be an int or a 1-D sequence of ints"),
    ("loss-to", lambda: B.support.to("jax"), V, r"^backend must be one of"),
    # --- tasks
    ("taskbatch-empty", lambda: lm.TaskBatch(np.zeros((0, 1, 3)), EYE3, 0.1), V, r"^w_star has shape \(0, 1, 3\)"),
    ("taskbatch-w-2d", lambda: _tb(w=np.zeros((1, 3))), V, r"^w_star must have shape \(\*runs, T, out, d\)"),
    ("taskbatch-w-complex", lambda: _tb(w=np.zeros((2, 1, 3), complex)), T, r"^w_star must be a real array.*complex"),
    ("taskbatch-w-nan", lambda: _tb(w=np.full((2, 1, 3), NAN)), V, r"^w_star contains 6 non-finite"),
    ("taskbatch-cov-nonpsd", lambda: _tb(cov=NEG), V, r"^input_cov must be positive semi-definite"),
    ("taskbatch-cov-shape", lambda: _tb(cov=np.eye(2)), V, r"^input_cov must be \(d, d\) or"),
    ("taskbatch-cov-complex", lambda: _tb(cov=EYE3 * 1j), T, r"^input_cov must be a real array"),
    ("taskbatch-noise-negative", lambda: _tb(noise=-0.1), V, r"^noise_std must be non-negative"),
    ("taskbatch-noise-shape", lambda: _tb(noise=np.ones(3)), V, r"^noise_std must be a float or an array"),
    ("taskbatch-noise-nan", lambda: _tb(noise=NAN), V, r"^noise_std contains"),
    ("taskbatch-take", lambda: TASKS.take([9]), V, r"^index holds positions outside 0..4"),
    ("taskbatch-sample-n", lambda: TASKS.sample_data(0, 0), V, r"^n must be a positive integer"),
    ("taskbatch-sample-rng", lambda: TASKS.sample_data(2, None), V, r"^rng must be"),
    ("taskbatch-moments-n", lambda: TASKS.moments(2.0, 0), T, r"^n must be an integer"),
    ("meta-batch-ndarray", lambda: lm.meta_batch(np.zeros((5, 1, 3)), 6, None, 1), T, r"^tasks must be a linmeta.TaskBatch"),
    ("meta-batch-K-zero", lambda: lm.meta_batch(TASKS, 0, None, 1), V, r"^K must be a positive integer or None"),
    ("meta-batch-K-float", lambda: lm.meta_batch(TASKS, 2.0, None, 1), T, r"^K must be a positive integer or None"),
    ("meta-batch-Q-negative", lambda: lm.meta_batch(TASKS, 2, -1, 1), V, r"^Q must be a positive integer or None"),
    ("meta-batch-rng", lambda: lm.meta_batch(TASKS, 2, None, None), V, r"^rng must be"),
    ("family-meta-batch-K", lambda: FAM.meta_batch(TASKS, True, None, 0), T, r"^K must be a positive integer or None"),
    ("metabatch-support", lambda: lm.MetaBatch(None, B.query), T, r"^support must be a loss object"),
    ("metabatch-query", lambda: lm.MetaBatch(B.support, 3), T, r"^query must be a loss object"),
    ("gauss-d-zero", lambda: lm.GaussianRegression(d=0), V, r"^d must be a positive integer"),
    ("gauss-d-float", lambda: lm.GaussianRegression(d=2.5), T, r"^d must be an integer"),
    ("gauss-out-zero", lambda: lm.GaussianRegression(d=3, out=0), V, r"^out must be a positive integer"),
    ("gauss-mean-shape", lambda: lm.GaussianRegression(d=3, mean=np.zeros(3)), V,
     r"^mean must have shape \(out, d\) = \(1, 3\)"),
    ("gauss-mean-nan", lambda: lm.GaussianRegression(d=3, mean=[[NAN, 0, 0]]), V, r"^mean contains 1 non-finite"),
    ("gauss-mean-complex", lambda: lm.GaussianRegression(d=3, mean=[[1j, 0, 0]]), T, r"^mean must be a real array"),
    ("gauss-cov-negative", lambda: lm.GaussianRegression(d=3, cov=-1.0), V, r"^cov must be non-negative"),
    ("gauss-cov-nan", lambda: lm.GaussianRegression(d=3, cov=NAN), V, r"^cov must be finite"),
    ("gauss-cov-nonpsd", lambda: lm.GaussianRegression(d=3, cov=NEG), V, r"^cov must be positive semi-definite"),
    ("gauss-cov-shape", lambda: lm.GaussianRegression(d=3, cov=np.eye(2)), V, r"^cov must be a float, a \(d, d\)"),
    ("gauss-cov-complex", lambda: lm.GaussianRegression(d=3, cov=1j), T, r"^cov must be a real number"),
    ("gauss-cov-bool", lambda: lm.GaussianRegression(d=3, cov=True), T, r"^cov must be a real number"),
    ("gauss-input-cov-complex", lambda: lm.GaussianRegression(d=2, input_cov=np.eye(2) * (1 + 1j)), T,
     r"^input_cov must be a real array.*complex"),
    ("gauss-input-cov-shape", lambda: lm.GaussianRegression(d=3, input_cov=np.eye(2)), V,
     r"^input_cov must have shape \(d, d\) = \(3, 3\)"),
    ("gauss-input-cov-nonsym", lambda: lm.GaussianRegression(d=3, input_cov=NONSYM), V, r"^input_cov must be symmetric"),
    ("gauss-input-cov-nan", lambda: lm.GaussianRegression(d=3, input_cov=np.full((3, 3), NAN)), V,
     r"^input_cov contains 9"),
    ("gauss-noise-negative", lambda: lm.GaussianRegression(d=3, noise_std=-0.1), V, r"^noise_std must be non-negative"),
    ("gauss-noise-str", lambda: lm.GaussianRegression(d=3, noise_std="0"), T, r"^noise_std must be a real number"),
    ("gauss-tasks-zero", lambda: FAM.sample_tasks(0, 0), V, r"^n_tasks must be a positive integer"),
    ("gauss-tasks-float", lambda: FAM.sample_tasks(3.0, 0), T, r"^n_tasks must be an integer"),
    ("gauss-runs-zero", lambda: FAM.sample_tasks(3, 0, n_runs=0), V, r"^n_runs must be a positive integer"),
    ("gauss-runs-float", lambda: FAM.sample_tasks(3, 0, n_runs=2.0), T, r"^n_runs must be an integer"),
    ("gauss-rng", lambda: FAM.sample_tasks(3, None), V, r"^rng must be"),
    ("mixture-ints", lambda: lm.TaskMixture((1, 2), (0.5, 0.5)), T, r"^components\[0\] must be a linmeta.GaussianRegression"),
    ("mixture-empty", lambda: lm.TaskMixture((), ()), V, r"^components must be a non-empty sequence"),
    ("mixture-family", lambda: lm.TaskMixture(FAM, (1.0,)), T, r"^components must be a sequence of task families"),
    ("mixture-classification", lambda: lm.TaskMixture((BIN,), (1.0,)), T, r"^components\[0\] must be"),
    ("mixture-weights-sum", lambda: lm.TaskMixture((FAM, FAM), (0.5, 0.6)), V, r"^weights must be 2 non-negative"),
    ("mixture-weights-length", lambda: lm.TaskMixture((FAM, FAM), (1.0,)), V, r"^weights must be 2 non-negative"),
    ("mixture-weights-negative", lambda: lm.TaskMixture((FAM, FAM), (1.5, -0.5)), V, r"^weights must be 2"),
    ("mixture-weights-nan", lambda: lm.TaskMixture((FAM, FAM), (NAN, 0.5)), V, r"^weights contains 1 non-finite"),
    ("mixture-weights-str", lambda: lm.TaskMixture((FAM, FAM), "ab"), T, r"^weights must be a sequence"),
    ("mixture-d", lambda: lm.TaskMixture((FAM, lm.GaussianRegression(d=4)), (0.5, 0.5)), V,
     r"^all components must share d and out"),
    ("mixture-runs-zero", lambda: MIX.sample_tasks(3, 0, n_runs=0), V, r"^n_runs must be a positive integer"),
    ("mixture-runs-float", lambda: MIX.sample_tasks(3, 0, n_runs=1.5), T, r"^n_runs must be an integer"),
    ("mixture-tasks-zero", lambda: MIX.sample_tasks(0, 0), V, r"^n_tasks must be a positive integer"),
    ("mixture-labels-flag", lambda: MIX.sample_tasks(3, 0, return_labels=1), T, r"^return_labels must be True or False"),
    ("binary-mean-nan", lambda: lm.BinaryClassification(d=3, mean=[NAN, 0, 0]), V, r"^mean contains 1 non-finite"),
    ("binary-input-cov-shape", lambda: lm.BinaryClassification(d=3, input_cov=np.eye(2)), V,
     r"^input_cov must have shape \(d, d\) = \(3, 3\)"),
    ("binary-input-cov-complex", lambda: lm.BinaryClassification(d=3, input_cov=EYE3 * 1j), T, r"^input_cov must be a real"),
    ("binary-mean-shape", lambda: lm.BinaryClassification(d=3, mean=np.zeros(4)), V, r"^mean must have shape \(d,\)"),
    ("binary-cov-negative", lambda: lm.BinaryClassification(d=3, cov=-1.0), V, r"^cov must be non-negative"),
    ("binary-label-noise-high", lambda: lm.BinaryClassification(d=3, label_noise=0.7), V, r"^label_noise must be in \[0, 0.5\]"),
    ("binary-label-noise-negative", lambda: lm.BinaryClassification(d=3, label_noise=-0.1), V, r"^label_noise must be"),
    ("binary-d-bool", lambda: lm.BinaryClassification(d=True), T, r"^d must be an integer"),
    ("binary-runs-zero", lambda: BIN.sample_tasks(3, 0, n_runs=0), V, r"^n_runs must be a positive integer"),
    ("binary-tasks-zero", lambda: BIN.sample_tasks(0, 0), V, r"^n_tasks must be a positive integer"),
    ("binary-loss-w-shape", lambda: BIN.sample_loss(np.zeros((3, 1, 2)), 4, 0), V, r"^w_star must have shape \(\*runs, T, 1, d\)"),
    ("binary-loss-w-nan", lambda: BIN.sample_loss(np.full((3, 1, 3), NAN), 4, 0), V, r"^w_star contains 9 non-finite"),
    ("binary-loss-n", lambda: BIN.sample_loss(WBIN, 0, 0), V, r"^n must be a positive integer"),
    ("binary-batch-None", lambda: BIN.meta_batch(WBIN, None, 4, 0), V, r"^K and Q must be integers"),
    ("binary-batch-K", lambda: BIN.meta_batch(WBIN, 0, 4, 0), V, r"^K must be a positive integer"),
    ("binary-batch-Q", lambda: BIN.meta_batch(WBIN, 4, 2.5, 0), T, r"^Q must be an integer"),
    ("binary-batch-tasks", lambda: BIN.meta_batch(TASKS, 4, 4, 0), T, r"^w_star must be a real array"),
    # --- preconditioners
    ("metasgd-nan", lambda: lm.MetaSGD(init_value=NAN), V, r"^init_value must be finite"),
    ("metasgd-inf", lambda: lm.MetaSGD(init_value=INF), V, r"^init_value must be finite"),
    ("metasgd-str", lambda: lm.MetaSGD(init_value="1"), T, r"^init_value must be a real number"),
    ("kfo-psd-str", lambda: lm.KFO(psd="no"), T, r"^psd must be True or False"),
    ("kfo-psd-None", lambda: lm.KFO(psd=None), T, r"^psd must be True or False"),
    ("kfo-update-int", lambda: lm.KFO(update_factors=1), T, r"^update_factors must be True or False"),
    ("metacurv-update", lambda: lm.MetaCurvature(update_factors="yes"), T, r"^update_factors must be True or False"),
    ("precond-get", lambda: pc.get("sgd"), V, r"^precond must be a Preconditioner or one of"),
    ("precond-get-int", lambda: pc.get(1), V, r"^precond must be"),
    ("precond-register", lambda: pc.register("kfo"), T, r"^preconditioner must be a Preconditioner instance"),
    ("precond-register-clash", lambda: pc.register(type("Odd", (lm.MetaSGD,), {})(init_value=2.0)), V,
     r"already registered as 'meta-sgd'"),
    # --- meta_train (defects 1-3, 10, 11)
    ("train-rule-None", lambda: lm.meta_train(P, FAM, None, steps=2), T, r"^rule must be a linmeta.InnerLoop"),
    ("train-family-None", lambda: _mt(family=None), T, r"^family must be a task family"),
    ("train-params-None", lambda: _mt(params=None), T, r"^params must be a non-empty tuple"),
    ("train-steps-zero", lambda: _mt(steps=0), V, r"^steps must be a positive integer"),
    ("train-steps-float", lambda: _mt(steps=2.0), T, r"^steps must be an integer"),
    ("train-lr-zero", lambda: _mt(lr=0.0), V, r"^lr must be positive"),
    ("train-lr-nan", lambda: _mt(lr=NAN), V, r"^lr must be finite"),
    ("train-lr-str", lambda: _mt(lr="0.1"), T, r"^lr must be a real number"),
    ("train-optimizer", lambda: _mt(optimizer="rmsprop"), V, r"^optimizer must be one of"),
    ("train-tasks-per-step", lambda: _mt(tasks_per_step=0), V, r"^tasks_per_step must be a positive integer"),
    ("train-eval-tasks", lambda: _mt(eval_tasks=0), V, r"^eval_tasks must be a positive integer"),
    ("train-K", lambda: _mt(K=0), V, r"^K must be a positive integer or None"),
    ("train-Q", lambda: _mt(Q=-1), V, r"^Q must be a positive integer or None"),
    ("train-eval-K", lambda: _mt(eval_K=1.5), T, r"^eval_K must be a positive integer or None"),
    ("train-eval-Q", lambda: _mt(eval_Q=0), V, r"^eval_Q must be a positive integer or None"),
    ("train-eval-every", lambda: _mt(eval_every=0), V, r"^eval_every must be a positive integer"),
    ("train-momentum-nan", lambda: _mt(optimizer="sgd", momentum=NAN), V, r"^momentum must be finite"),
    ("train-momentum-one", lambda: _mt(optimizer="sgd", momentum=1.0), V, r"^momentum must be in \[0, 1\)"),
    ("train-momentum-adam", lambda: _mt(momentum=0.5), V, r"^momentum=0.5 applies to optimizer='sgd' only"),
    ("train-divergence-nan", lambda: _mt(divergence_factor=NAN), V, r"^divergence_factor must be finite"),
    ("train-divergence-one", lambda: _mt(divergence_factor=1.0), V, r"^divergence_factor must be > 1"),
    ("train-learn-phi", lambda: _mt(learn_phi="yes"), T, r"^learn_phi must be True or False"),
    ("train-check-stability", lambda: _mt(check_stability=0), T, r"^check_stability must be True or False"),
    ("train-progress", lambda: _mt(progress="no"), T, r"^progress must be True or False"),
    ("train-lr-schedule", lambda: _mt(lr_schedule=3), T, r"^lr_schedule must be a function"),
    ("train-callback", lambda: _mt(callback="f"), T, r"^callback must be a function"),
    ("train-fixed-tasks", lambda: _mt(fixed_tasks=0), V, r"^fixed_tasks must be a positive integer"),
    ("train-fixed-both", lambda: _mt(fixed_tasks=3, fixed_batch=B), V, r"pass fixed_tasks .* or fixed_batch .* not both"),
    ("train-fixed-batch", lambda: _mt(fixed_batch=3), T, r"^fixed_batch must be a linmeta.MetaBatch"),
    ("train-lbfgs", lambda: _mt(optimizer="lbfgs"), V, r"^optimizer='lbfgs' needs a fixed task set"),
    ("train-seed-None", lambda: _mt(seed=None), V, r"^seed must be"),
    ("train-seed-negative", lambda: _mt(seed=-1), V, r"^seed must be"),
    ("train-seed-float", lambda: _mt(seed=1.5), T, r"^seed must be"),
    ("train-precond", lambda: _mt(precond="nope"), V, r"^precond must be"),
    ("train-phi-shape", lambda: _mt(precond="meta-sgd", phi=_phi_msgd(np.ones((3, 3)))), V,
     r"^phi\[0\]\[0\] must have shape \(4, 3\)"),
    ("train-alpha-unstable", lambda: _mt(rule=lm.InnerLoop(2, 50.0)), V, r"^alpha=50.0 is above the inner-step stability"),
    ("train-schedule-nan", lambda: _mt(lr_schedule=lambda s: NAN), V, r"^lr_schedule\(step\) must be finite"),
    ("train-schedule-negative", lambda: _mt(lr_schedule=lambda s: -1.0), V, r"^lr_schedule\(step\) must be non-negative"),
    ("train-classification-Q", lambda: _mt(family=BIN, Q=None), V, r"^K and Q must be integers"),
    ("train-diverge-lr", lambda: lm.meta_train(lm.init_deep_linear(5, (8,), 1, rng=0), lm.GaussianRegression(d=5, noise_std=0.1),
                                               lm.InnerLoop(steps=2, alpha=0.05), steps=1, lr=1e100, optimizer="sgd",
                                               tasks_per_step=16, K=10, Q=None, eval_tasks=32), D,
     r"meta-training diverged at outer step 1"),
    ("train-diverge-schedule", lambda: _mt(optimizer="sgd", lr=1e308, lr_schedule=lambda s: 10.0), D,
     r"meta-training diverged at outer step 1 \(the parameters after the update are not finite\)"),
    # --- theory.shallow (defects 13, 14)
    ("shallow-steps-limit", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 5, 0.1, 5), V,
     r"^steps=5 with a K=5-shot support set .*steps <= 4"),
    ("shallow-M-nan", lambda: shallow.expected_meta_loss(np.full((1, 3), NAN), FAM, 5, 0.1, 1), V, r"^M contains 3"),
    ("shallow-M-shape", lambda: shallow.expected_meta_loss(np.zeros((2, 3)), FAM, 5, 0.1, 1), V,
     r"^M must have shape \(out, d\) = \(1, 3\)"),
    ("shallow-M-complex", lambda: shallow.expected_meta_loss(np.zeros((1, 3)) * 1j, FAM, 5, 0.1, 1), T, r"^M must be a real"),
    ("shallow-family", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), None, 5, 0.1, 1), T,
     r"^family must be a GaussianRegression or a TaskMixture"),
    ("shallow-K-zero", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 0, 0.1, 1), V, r"^K must be a positive"),
    ("shallow-alpha-nan", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 5, NAN, 1), V, r"^alpha must be finite"),
    ("shallow-steps-negative", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 5, 0.1, -1), V,
     r"^steps must be a non-negative"),
    ("shallow-task-loss-tasks", lambda: shallow.expected_task_loss(np.zeros((1, 3)), "tasks", 5, 0.1), T,
     r"^tasks must be a linmeta.TaskBatch"),
    ("shallow-task-loss-M", lambda: shallow.expected_task_loss(np.zeros((2, 3)), TASKS, 5, 0.1), V,
     r"^M must have shape \(\.\.\., out, d\)"),
    ("shallow-task-loss-broadcast", lambda: shallow.expected_task_loss(np.zeros((3, 1, 3)), TASKS, 5, 0.1), V,
     r"^M of shape \(3, 1, 3\) does not broadcast"),
    ("shallow-quad-noise", lambda: shallow.shallow_quadratic(EYE3, -0.1, 1, 5, 0.1, 1), V, r"^noise_std must be non-negative"),
    ("shallow-quad-cov", lambda: shallow.shallow_quadratic(NEG, 0.0, 1, 5, 0.1, 1), V, r"^input_cov must be positive"),
    ("shallow-quad-out", lambda: shallow.shallow_quadratic(EYE3, 0.0, 0, 5, 0.1, 1), V, r"^out must be a positive"),
    ("shallow-quad-noise-shape", lambda: shallow.shallow_quadratic(np.stack([EYE3] * 2), np.ones(3), 1, 5, 0.1, 1), V,
     r"^noise_std must be a float or an array broadcastable"),
    ("shallow-optimum-steps", lambda: shallow.maml_optimum(FAM, 5, 0.1, 5), V, r"^steps=5 .*steps <= 4"),
    ("shallow-floor-K", lambda: shallow.shallow_floor(FAM, 1.5, 0.1), T, r"^K must be a positive integer or None"),
    ("shallow-alpha-bracket-order", lambda: shallow.optimal_alpha(FAM, 5, 1, bracket=(1.0, 0.5)), V,
     r"^bracket must have low < high"),
    ("shallow-alpha-bracket-type", lambda: shallow.optimal_alpha(FAM, 5, 1, bracket="x"), T, r"^bracket must be a pair"),
    ("shallow-alpha-steps", lambda: shallow.optimal_alpha(FAM, 5, 9), V, r"^steps=9 .*steps <= 4"),
    # --- theory.depth
    ("depth-w1-nan", lambda: depth.scalar_deep_meta_loss(NAN, 1, 0.1), V, r"^w1 contains 1 non-finite"),
    ("depth-w2-nan", lambda: depth.scalar_deep_meta_loss(1, NAN, 0.1), V, r"^w2 contains 1 non-finite"),
    ("depth-alpha-nan", lambda: depth.scalar_deep_meta_loss(1, 1, NAN), V, r"^alpha must be finite"),
    ("depth-rho-zero", lambda: depth.scalar_deep_meta_loss(1, 1, 0.1, rho=0.0), V, r"^rho must be positive"),
    ("depth-s-negative", lambda: depth.scalar_deep_meta_loss(1, 1, 0.1, s=-1.0), V, r"^s must be non-negative"),
    ("depth-noise-negative", lambda: depth.scalar_deep_meta_loss(1, 1, 0.1, noise_std=-1.0), V, r"^noise_std must be"),
    ("depth-mu-inf", lambda: depth.scalar_deep_meta_loss(1, 1, 0.1, mu=INF), V, r"^mu must be finite"),
    ("depth-broadcast", lambda: depth.scalar_deep_meta_loss(np.ones(2), np.ones(3), 0.1), V, r"^w1, w2 must broadcast"),
    ("depth-shallow-w", lambda: depth.scalar_shallow_meta_loss(NAN, 0.1), V, r"^w contains 1 non-finite"),
    ("depth-adapted-w-star", lambda: depth.scalar_adapted(1, 1, NAN, 0.1), V, r"^w_star contains 1 non-finite"),
    ("depth-step-w2", lambda: depth.scalar_effective_step(1, "a", 0.1), T, r"^w2 must be a real array"),
    ("depth-minima-alpha", lambda: depth.scalar_deep_minima(0.0), V, r"^alpha must be positive"),
    ("depth-minima-rho", lambda: depth.scalar_deep_minima(0.1, rho=-1.0), V, r"^rho must be positive"),
    # --- theory.gaussian_moments, wick
    ("chain-n", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 9), V, r"^n must be at most 8"),
    ("chain-n-float", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 1.0), T, r"^n must be an integer"),
    ("chain-K", lambda: gaussian_moments.chain_moment(np.eye(2), 0, 2), V, r"^K must be a positive integer"),
    ("chain-Sigma", lambda: gaussian_moments.chain_moment(-np.eye(2), 3, 2), V, r"^Sigma must be positive semi-definite"),
    ("chain-insert-key", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 2, {5: np.eye(2)}), V,
     r"^inserts key 5 is out of range"),
    ("chain-insert-shape", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 2, {1: np.eye(3)}), V,
     r"^inserts\[1\] must have shape"),
    ("chain-insert-nan", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 2, {1: np.full((2, 2), NAN)}), V,
     r"^inserts\[1\] contains 4"),
    ("chain-inserts-type", lambda: gaussian_moments.chain_moment(np.eye(2), 3, 2, [np.eye(2)]), T, r"^inserts must be a dict"),
    ("sandwich-degree", lambda: gaussian_moments.poly_sandwich(np.eye(2), 3, [1.0] * 6, None, [1.0] * 5), V,
     r"^deg\(left\) \+ deg\(right\) = 9"),
    ("sandwich-left-nan", lambda: gaussian_moments.poly_sandwich(np.eye(2), 3, [NAN], None, [1.0]), V, r"^left contains"),
    ("sandwich-right-2d", lambda: gaussian_moments.poly_sandwich(np.eye(2), 3, [1.0], None, [[1.0]]), V,
     r"^right must be a 1-D sequence"),
    ("sandwich-C", lambda: gaussian_moments.poly_sandwich(np.eye(2), 3, [0, 1.0], np.eye(3), [0, 1.0]), V,
     r"^C must have shape"),
    ("gd-poly-alpha", lambda: gaussian_moments.gd_polynomial(NAN, 2), V, r"^alpha must be finite"),
    ("gd-poly-steps", lambda: gaussian_moments.gd_polynomial(0.1, -1), V, r"^steps must be a non-negative"),
    ("gd-noise-poly-steps", lambda: gaussian_moments.gd_noise_polynomial(0.1, 1.5), T, r"^steps must be an integer"),
    ("wick-word", lambda: wick.expected_trace([(1.0, ("X",))], [], np.eye(2), 3), T,
     r"^terms\[0\] word\[0\] must be a Const or a Gauss factor"),
    ("wick-K", lambda: wick.expected_trace([(1.0, (wick.X, wick.XT))], [], np.eye(2), 0), V, r"^K must be a positive"),
    ("wick-noise-var", lambda: wick.expected_trace([(1.0, (wick.X, wick.XT))], [], np.eye(2), 3, noise_var=-1.0), V,
     r"^noise_var must be non-negative"),
    ("wick-noise-dim", lambda: wick.expected_trace([(1.0, (wick.X, wick.XT))], [], np.eye(2), 3, noise_dim=0), V,
     r"^noise_dim must be a positive"),
    ("wick-const-index", lambda: wick.expected_trace([(1.0, (wick.Const(2), wick.X, wick.XT))], [np.eye(2)], np.eye(2), 3),
     V, r"^terms\[0\] word\[0\] refers to constants\[2\], but there are 1"),
    ("wick-coef", lambda: wick.expected_trace([(NAN, (wick.X, wick.XT))], [], np.eye(2), 3), V, r"^terms\[0\] coef must be finite"),
    ("wick-term-shape", lambda: wick.expected_trace([1.0], [], np.eye(2), 3), T, r"^terms\[0\] must be a pair"),
    ("wick-constants", lambda: wick.expected_trace([], np.eye(2), np.eye(2), 3), T, r"^constants must be a list"),
    ("wick-transpose", lambda: wick.transpose_word("XX"), T, r"^word must be a tuple"),
    # --- theory.deep_one_step
    ("deep-steps", lambda: deep_one_step.expected_task_loss(P, TASKS, 5, lm.InnerLoop(2)), V, r"^rule.steps must be 0 or 1"),
    ("deep-K", lambda: deep_one_step.expected_task_loss(P, TASKS, 0, R), V, r"^K must be a positive integer or None"),
    ("deep-tasks", lambda: deep_one_step.expected_meta_loss(P, None, 5, R), T, r"^tasks must be a linmeta.TaskBatch"),
    ("deep-rule", lambda: deep_one_step.expected_meta_loss(P, TASKS, 5, None), T, r"^rule must be a linmeta.InnerLoop"),
    ("deep-d", lambda: deep_one_step.expected_task_loss(lm.init_deep_linear(4, (2,), 1, rng=0), TASKS, 5, R), V,
     r"^tasks have d=3"),
    ("deep-layers", lambda: deep_one_step.expected_task_loss(P3, TASKS, 5, R), V, r"^rule adapts 3 layers"),
    ("deep-params-complex", lambda: deep_one_step.expected_task_loss((P[0] * 1j, P[1]), TASKS, 5, R), T,
     r"^params\[0\] must be a real array"),
    ("deep-runs", lambda: deep_one_step.expected_task_loss(lm.init_deep_linear(3, (4,), 1, rng=0, n_runs=3),
                                                           FAM.sample_tasks(5, 0, n_runs=2), 5, R), V,
     r"^tasks have run shape \(2,\), but params have \(3,\)"),
    # --- theory.anil
    ("anil-features-X", lambda: anil.body_features(P, np.ones((4, 2))), V, r"^X must have shape \(\.\.\., n, d\) with d = 3"),
    ("anil-features-params", lambda: anil.body_features(None, np.ones((4, 3))), T, r"^params must be a non-empty tuple"),
    ("anil-vote-n", lambda: anil.one_step_prediction(np.ones((4, 2)), np.ones((3, 1)), np.ones((2, 2)), 0.1), V,
     r"^phi_support and Y_support must have the same n"),
    ("anil-vote-alpha", lambda: anil.one_step_prediction(np.ones((4, 2)), np.ones((4, 1)), np.ones((2, 2)), NAN), V,
     r"^alpha must be finite"),
    ("anil-vote-head", lambda: anil.one_step_prediction(np.ones((4, 2)), np.ones((4, 1)), np.ones((2, 2)), 0.1,
                                                        head=np.ones((1, 3))), V, r"^head must have shape"),
    ("anil-vote-empty", lambda: anil.zero_head_vote(np.ones((0, 2)), np.ones((0, 1)), np.ones((2, 2)), 0.1), V,
     r"^phi_support must have shape .* n >= 1"),
    ("anil-logistic-y", lambda: anil.logistic_zero_head_vote(np.ones((4, 2)), 2 * np.ones(4), np.ones((2, 2)), 0.1), V,
     r"^y_support must hold labels in \[0, 1\]"),
    ("anil-cosine-zero", lambda: anil.cosine_vote(np.zeros((4, 2)), np.ones((4, 1)), np.ones((2, 2))), V,
     r"non-zero feature vectors"),
    ("anil-quadratic-R", lambda: anil.one_step_quadratic(NEG, EYE3, 0.0, 1, 5, 0.1), V, r"^R must be positive semi-definite"),
    ("anil-quadratic-K", lambda: anil.one_step_quadratic(EYE3, EYE3, 0.0, 1, 0, 0.1), V, r"^K must be a positive"),
    ("anil-quadratic-noise", lambda: anil.one_step_quadratic(EYE3, EYE3, -1.0, 1, 5, 0.1), V, r"^noise_std must be"),
    ("anil-task-loss-tasks", lambda: anil.anil_expected_task_loss(P, None, 5, 0.1), T, r"^tasks must be a linmeta.TaskBatch"),
    ("anil-loss-K", lambda: anil.anil_expected_loss(P, FAM, 0, 0.1), V, r"^K must be a positive integer or None"),
    ("anil-loss-family", lambda: anil.anil_expected_loss(P, "fam", 5, 0.1), T, r"^family must be a GaussianRegression"),
    ("anil-nal-d", lambda: anil.nal_expected_loss(P, lm.GaussianRegression(d=4)), V, r"^family has d=4"),
    ("anil-oracle-family", lambda: anil.anil_oracle(MIX, 5, 0.1), T, r"^family must be a linmeta.GaussianRegression"),
    ("anil-oracle-alpha", lambda: anil.anil_oracle(FAM, 5, 0.0), V, r"^alpha must be non-zero"),
    ("anil-trace-mean", lambda: anil.gaussian_trace_mean(np.eye(1), EYE3, np.zeros((1, 3)), np.zeros(3), EYE3), V,
     r"^mean must have shape \(out, d\) = \(1, 3\)"),
    ("anil-trace-cov", lambda: anil.gaussian_trace_mean(np.eye(1), EYE3, np.zeros((1, 3)), np.zeros((1, 3)), np.eye(2)), V,
     r"^cov must have shape \(out\*d, out\*d\)"),
    ("anil-split-depth", lambda: anil.two_layer_split_expectation(P3, FAM, 0.1), V, r"needs exactly 2 layers, got 3"),
    ("anil-split-alpha", lambda: anil.two_layer_split_expectation(P, FAM, NAN), V, r"^alpha must be finite"),
    # --- theory.landscape
    ("land-curv-steps", lambda: landscape.curvature(np.eye(2), 5, 0.1, 4), V, r"^steps=4 with a reused support set"),
    ("land-curv-sampling", lambda: landscape.curvature(np.eye(2), 5, 0.1, 1, sampling="random"), V,
     r"^sampling must be one of"),
    ("land-curv-noise", lambda: landscape.curvature(np.eye(2), 5, 0.1, 1, noise_std=-1.0), V, r"^noise_std must be"),
    ("land-curv-cov", lambda: landscape.curvature(-np.eye(2), 5, 0.1, 1), V, r"^input_cov must be positive"),
    ("land-excess-W", lambda: landscape.expected_excess_risk(np.zeros((1, 2)), FAM, 5, 0.1), V,
     r"^W must have trailing shape \(out, d\) = \(1, 3\)"),
    ("land-excess-W-nan", lambda: landscape.expected_excess_risk(np.full(3, NAN), FAM, 5, 0.1), V, r"^W contains 3"),
    ("land-excess-family", lambda: landscape.expected_excess_risk(np.zeros(3), "fam", 5, 0.1), T,
     r"^family must be a linmeta GaussianRegression"),
    ("land-gain-floor", lambda: landscape.gain(MIX, 5, 0.1, include_floor=1), T, r"^include_floor must be True or False"),
    ("land-cond-nonpsd", lambda: landscape.condition_number(NEG), V, r"^H must be positive semi-definite"),
    ("land-cond-stack", lambda: landscape.condition_number(np.stack([EYE3, EYE3])), V, r"^H must be one \(d, d\) matrix"),
    ("land-path-w0", lambda: landscape.mean_gd_path(EYE3, np.zeros(2), np.zeros(3), 0.1, 3), V,
     r"^w0 must have shape \(\.\.\., d\) with d = 3"),
    ("land-path-lr", lambda: landscape.mean_gd_path(EYE3, np.zeros(3), np.zeros(3), 0.0, 3), V, r"^lr must be positive"),
    ("land-iters-tol", lambda: landscape.gd_iterations(EYE3, 2.0), V, r"^tol must be in \(0, 1\)"),
    ("land-iters-zero", lambda: landscape.gd_iterations(np.zeros((3, 3)), 0.1), V, r"H is zero, so the default lr"),
    ("land-tc-p", lambda: landscape.TwoCluster(1.0, 0.5, 1.0, 0.1, 1.0, 0.5, 0.5, 3), V, r"^p_hard must be in \(0, 1\)"),
    ("land-tc-rho", lambda: landscape.TwoCluster(0.5, 0.0, 1.0, 0.1, 1.0, 0.5, 0.5, 3), V, r"^rho_hard must be positive"),
    ("land-tc-d", lambda: landscape.TwoCluster(0.5, 0.5, 1.0, 0.1, 1.0, 0.5, 0.5, 0), V, r"^d must be a positive"),
    ("land-tc-K", lambda: landscape.TwoCluster(0.5, 0.5, 1.0, 0.1, 1.0, 0.5, 0.5, 3, K=0), V, r"^K must be a positive"),
    ("land-iso-rho", lambda: landscape.isotropic_curvature(np.array(1.0), 3, 5, 0.1), T, r"^rho must be a real number"),
    ("land-iso-d", lambda: landscape.isotropic_curvature(1.0, 0, 5, 0.1), V, r"^d must be a positive integer"),
    ("land-two-cluster", lambda: landscape.two_cluster("tc"), V, r"^tc must be a TwoCluster"),
    ("land-qgain-weights", lambda: landscape.quadratic_gain([0.5, 0.6], np.zeros((2, 3)), np.stack([EYE3] * 2),
                                                          np.stack([EYE3] * 2), np.stack([EYE3] * 2)), V,
     r"^weights must be a vector of non-negative numbers summing to 1"),
    ("land-qgain-means", lambda: landscape.quadratic_gain([0.5, 0.5], np.zeros((3, 3)), np.stack([EYE3] * 2),
                                                        np.stack([EYE3] * 2), np.stack([EYE3] * 2)), V,
     r"^means must have shape \(2, 3\)"),
    ("land-qgain-noise", lambda: landscape.quadratic_gain([0.5, 0.5], np.zeros((2, 3)), np.stack([EYE3] * 2),
                                                        np.stack([EYE3] * 2), np.stack([EYE3] * 2), noise=[1.0]), V,
     r"^noise must have shape \(C,\) = \(2,\)"),
    ("land-shots-rho", lambda: landscape.coincidence_shots(0.0, 1.0, 0.1, 3), V, r"^rho_hard must be positive"),
    ("land-fixed-n", lambda: landscape.two_cluster_fixed_tasks(TC, 0, 1), V, r"^n_hard must be a positive"),
    ("land-gd-curv", lambda: landscape.gd_on_isotropic_quadratics(np.array([-1.0, 1.0]), np.zeros((2, 3)), np.zeros(3),
                                                                0.1, 2), V, r"^curvatures must be non-negative"),
    ("land-gd-shapes", lambda: landscape.gd_on_isotropic_quadratics(np.ones(2), np.zeros((3, 3)), np.zeros(3), 0.1, 2), V,
     r"^curvatures \(\.\.\., T\), optima"),
    ("land-fo-steps", lambda: landscape.fo_maml_optimum(MIX, 5, 0.1, 0), V, r"^steps must be at least 1 for FO-MAML"),
    ("land-nal-family", lambda: landscape.nal_optimum(None), T, r"^family must be a linmeta GaussianRegression"),
    ("land-noise-floor", lambda: landscape.noise_floor(BIN), T, r"^family must be a linmeta GaussianRegression"),
    # --- theory.metaopt
    ("mo-moment-M", lambda: metaopt.error_moment(np.zeros((1, 2)), FAM), V, r"^M must have shape \(out, d\) = \(1, 3\)"),
    ("mo-moment-family", lambda: metaopt.error_moment(np.zeros((1, 3)), MIX), T, r"^family must be a linmeta.GaussianRegression"),
    ("mo-curvature-sizes", lambda: metaopt.one_step_curvature(EYE3, np.eye(2), 5), V, r"^input_cov and R must both be"),
    ("mo-curvature-out", lambda: metaopt.one_step_curvature(EYE3, EYE3, 5, out=0), V, r"^out must be a positive"),
    ("mo-loss-P", lambda: metaopt.one_step_loss(np.eye(2), EYE3, EYE3, 5), V, r"^P must be a \(d, d\)"),
    ("mo-loss-P-nan", lambda: metaopt.one_step_loss(np.full((3, 3), NAN), EYE3, EYE3, 5), V, r"^P contains 9"),
    ("mo-optimal-K", lambda: metaopt.optimal_preconditioner(EYE3, EYE3, 0), V, r"^K must be a positive integer or None"),
    ("mo-optimal-singular", lambda: metaopt.optimal_preconditioner(EYE3, np.zeros((3, 3)), None), V,
     r"^optimal_preconditioner: the one-step curvature H is singular"),
    ("mo-scalar-zero", lambda: metaopt.optimal_scalar_step(EYE3, np.zeros((3, 3)), None), V, r"tr\(Σ H\) = 0"),
    ("mo-floors-family", lambda: metaopt.preconditioner_floors(MIX, 5, 0.1), T, r"^family must be a linmeta.GaussianRegression"),
    ("mo-floors-K", lambda: metaopt.preconditioner_floors(FAM, -5, 0.1), V, r"^K must be a positive integer or None"),
    ("mo-poly-layers", lambda: metaopt.step_polynomial(P, G, layers=(1.5,)), T, r"^layers\[0\] must be an integer"),
    ("mo-poly-range", lambda: metaopt.step_polynomial(P, G, layers=(5,)), V, r"^layers contains index 5"),
    ("mo-poly-dup", lambda: metaopt.step_polynomial(P, G, layers=(0, -2)), V, r"^layers \(0, -2\) name the same layer"),
    ("mo-poly-G", lambda: metaopt.step_polynomial(P, np.ones((1, 2)), None), V, r"^G must have trailing shape \(out, d\)"),
    ("mo-ratio-alpha", lambda: metaopt.residual_ratio_interval(metaopt.step_polynomial(P, G), 0.0), V,
     r"^alpha must be positive"),
    ("mo-ratio-coeffs", lambda: metaopt.residual_ratio_interval("x", 0.1), T, r"^coeffs must be a list of arrays"),
    ("mo-ratio-short", lambda: metaopt.residual_ratio_interval(metaopt.step_polynomial(P1, np.ones((1, 3))), 0.1), V,
     r"^coeffs must have a non-zero second-order coefficient"),
    ("mo-softplus-s", lambda: metaopt.expected_softplus(NAN), V, r"^s contains 1 non-finite"),
    ("mo-softplus-nodes", lambda: metaopt.expected_softplus(1.0, nodes=0), V, r"^nodes must be a positive"),
    ("mo-softplus-nodes-big", lambda: metaopt.expected_softplus(1.0, nodes=10_000), V, r"^nodes must be an integer <= 300"),
    # --- theory.precondition
    ("pre-factors-range", lambda: precondition.factors(P, layers=(2,)), V, r"^layers contains 2"),
    ("pre-factors-float", lambda: precondition.factors(P, layers=(0.5,)), T, r"^layers\[0\] must be an integer"),
    ("pre-factors-int", lambda: precondition.factors(P, layers=0), T, r"^layers must be a sequence of ints"),
    ("pre-update-G", lambda: precondition.implicit_update(P, np.ones((2, 3))), V, r"^G must have shape \(\.\.\., out, d\)"),
    ("pre-step-alpha", lambda: precondition.implicit_step_size(P, NAN), V, r"^alpha must be finite"),
    ("pre-power-A", lambda: precondition.psd_power(NEG, 0.5), V, r"^A must be positive semi-definite"),
    ("pre-power-p", lambda: precondition.psd_power(EYE3, NAN), V, r"^p must be finite"),
    ("pre-balanced-depth", lambda: precondition.balanced_factors(np.ones((1, 3)), 2.0), T, r"^depth must be an integer"),
    ("pre-balanced-M", lambda: precondition.balanced_factors(np.ones(3), 2), V, r"^M must be a matrix"),
    ("pre-exact-alpha", lambda: precondition.exact_one_step_map(P, G, NAN), V, r"^alpha must be finite"),
    ("pre-exact-layers", lambda: precondition.exact_one_step_map(P, G, 0.1, layers=(True,)), T, r"^layers\[0\] must be"),
    ("pre-kron", lambda: precondition.batched_kron(np.ones(3), np.ones((2, 2))), V, r"^a must have at least 2"),
    # --- theory.similarity
    ("sim-cka-vector", lambda: similarity.linear_cka(np.ones(3), EYE3), V, r"^A must be a matrix \(\.\.\., n, d\)"),
    ("sim-cka-d", lambda: similarity.linear_cka(np.ones((2, 3)), np.ones((2, 4))), V, r"^A and A2 must act on the same"),
    ("sim-cka-zero", lambda: similarity.linear_cka(np.zeros((2, 3)), EYE3), V, r"^A and A2 must give non-constant"),
    ("sim-cka-cov", lambda: similarity.linear_cka(EYE3, EYE3, np.eye(2)), V, r"^input_cov must have shape \(d, d\)"),
    ("sim-cka-complex", lambda: similarity.linear_cka(EYE3 * 1j, EYE3), T, r"^A must be a real array"),
    ("sim-cca-rtol", lambda: similarity.canonical_correlations(EYE3, EYE3, rtol=0.0), V, r"^rtol must be positive"),
    ("sim-cca-batched", lambda: similarity.canonical_correlations(np.stack([EYE3] * 2), EYE3), V,
     r"takes one pair of 2-D maps"),
    ("sim-mean-cca-zero", lambda: similarity.mean_cca(np.zeros((2, 3)), EYE3), V, r"a representation map is zero"),
    ("sim-cosines", lambda: similarity.principal_cosines(np.ones((3, 2)), EYE3[:, :1]), V, r"^Q1 must have orthonormal"),
    ("sim-subspace-rank", lambda: similarity.subspace_distance(np.ones((3, 2)), EYE3[:, :1]), V,
     r"^B must have full column rank"),
    ("sim-subspace-rows", lambda: similarity.subspace_distance(np.ones((3, 1)), np.ones((4, 1))), V,
     r"^B and B_star must have the same number of rows d"),
    # --- sim.evaluation, families, head_body
    ("eval-K", lambda: evaluation.test_set(FAM, 0, 3, 0), V, r"^K must be a positive integer or None"),
    ("eval-n-tasks", lambda: evaluation.test_set(FAM, 5, 0, 0), V, r"^n_tasks must be a positive integer"),
    ("eval-family", lambda: evaluation.test_set(None, 5, 3, 0), T, r"^family must be a task family"),
    ("eval-return-tasks", lambda: evaluation.test_set(FAM, 5, 3, 0, return_tasks="y"), T, r"^return_tasks must be True"),
    ("eval-losses-batch", lambda: evaluation.post_adaptation_losses(P, "batch", R), T, r"^batch must be a linmeta.MetaBatch"),
    ("eval-backend-batch", lambda: evaluation.on_backend_of(3, P), T, r"^batch must be a linmeta.MetaBatch"),
    ("fam-basis-k", lambda: families.low_rank_basis(3, 5, 0), V, r"^k must be at most d = 3"),
    ("fam-basis-seed", lambda: families.low_rank_basis(3, 2, 1.5), T, r"^seed must be an integer"),
    ("fam-repr-name", lambda: families.representation_family("sparse", 4, 2, 0.1), V, r"^name must be one of"),
    ("fam-repr-noise", lambda: families.representation_family("low_rank", 4, 2, -1.0), V, r"^noise must be non-negative"),
    ("fam-repr-head-var", lambda: families.representation_family("low_rank", 4, 2, 0.1, head_var=[1.0]), V,
     r"^head_var must have shape \(k,\) = \(2,\)"),
    ("fam-runs-empty", lambda: families.TwoClusterRuns(()), V, r"^landscapes must be a non-empty sequence"),
    ("fam-runs-single", lambda: families.TwoClusterRuns(TC), T, r"^landscapes must be a sequence of TwoCluster"),
    ("fam-runs-tasks", lambda: TC_RUNS.sample_tasks(1, 0), V, r"^n_tasks must be at least 2"),
    ("fam-runs-n-runs", lambda: TC_RUNS.sample_tasks(4, 0, n_runs=5), V, r"^n_runs must be None or the number of landscapes"),
    ("fam-runs-hard", lambda: TC_RUNS.n_hard(1.5), T, r"^n_tasks must be an integer"),
    ("hb-depth", lambda: head_body.head_body_split(P1, B.support, B.query, 0.1), V, r"needs a body"),
    ("hb-query", lambda: head_body.head_body_split(P, B.support, None, 0.1), T, r"^query must be a loss object"),
    ("hb-alpha", lambda: head_body.head_body_split(P, B.support, B.query, NAN), V, r"^alpha must be finite"),
    # --- sim.montecarlo
    ("mc-draws", lambda: montecarlo.post_adaptation_samples(P, TASKS, 5, R, draws=0, rng=0), V,
     r"^draws must be a positive integer"),
    ("mc-chunk", lambda: montecarlo.post_adaptation_samples(P, TASKS, 5, R, draws=2, rng=0, chunk=0), V,
     r"^chunk must be a positive integer"),
    ("mc-tasks", lambda: montecarlo.expected_meta_loss_mc(P, None, 5, R, draws=2, rng=0), T,
     r"^tasks must be a linmeta.TaskBatch"),
    ("mc-K", lambda: montecarlo.expected_meta_loss_mc(P, TASKS, 0, R, draws=2, rng=0), V, r"^K must be a positive"),
    ("mc-Q", lambda: montecarlo.expected_meta_loss_mc(P, TASKS, 5, R, draws=2, rng=0, Q=2.5), T, r"^Q must be a positive"),
    ("mc-rule", lambda: montecarlo.expected_meta_loss_mc(P, TASKS, 5, "maml", draws=2, rng=0), T, r"^rule must be"),
    ("mc-runs", lambda: montecarlo.post_adaptation_samples(lm.init_deep_linear(3, (), 1, rng=0, n_runs=2), TASKS, 5, R,
                                                           draws=2, rng=0), V, r"^params must be one model without a run axis"),
    ("mc-excess-inits", lambda: montecarlo.excess_samples(np.zeros((2, 1, 4)), MIX, 0.1, 1, 5, 4, 0), V,
     r"^inits must have shape \(R, out, d\)"),
    ("mc-excess-sampling", lambda: montecarlo.excess_samples(np.zeros((2, 1, 3)), MIX, 0.1, 1, 5, 4, 0, sampling="x"), V,
     r"^sampling must be one of"),
    ("mc-excess-n", lambda: montecarlo.excess_samples(np.zeros((2, 1, 3)), MIX, 0.1, 1, 5, 0, 0), V,
     r"^n_tasks must be a positive"),
    ("mc-grad-W", lambda: montecarlo.meta_gradient_batches(np.zeros((1, 4)), FAM, R, 5, 2, 3, 0), V,
     r"^W must have shape \(out, d\) = \(1, 3\)"),
    ("mc-grad-batches", lambda: montecarlo.meta_gradient_batches(np.zeros((1, 3)), FAM, R, 5, 0, 3, 0), V,
     r"^batches must be a positive integer"),
    ("mc-logr-alpha", lambda: montecarlo.logr_zero_init_limits(0.0, 3, 5), V, r"^alpha must be positive"),
    ("mc-logr-noise", lambda: montecarlo.logr_zero_init_limits(0.1, 3, 5, label_noise=0.6), V, r"^label_noise must be in"),
    # --- sim.representations, stats, training
    ("rep-maps", lambda: representations.layer_maps(None), T, r"^params must be a non-empty tuple"),
    ("rep-maps-chain", lambda: representations.layer_maps((np.ones((2, 3)), np.ones((1, 3)))), V,
     r"^params\[1\] must have shape"),
    ("rep-features-X", lambda: representations.layer_features(P, np.ones((4, 2))), V, r"^X must have shape \(\.\.\., n, d\)"),
    ("rep-cka-samples", lambda: representations.linear_cka_samples(np.ones((1, 2)), np.ones((1, 2))), V,
     r"at least 2 samples are needed"),
    ("rep-cka-rows", lambda: representations.linear_cka_samples(np.ones((3, 2)), np.ones((4, 2))), V,
     r"^H and H2 must have the same number of samples n"),
    ("rep-cca-keep", lambda: representations.canonical_correlations_samples(X46, X46, keep=2.0), V,
     r"^keep must be a variance fraction in \(0, 1\]"),
    ("rep-mean-cca-rtol", lambda: representations.mean_cca_samples(X46, X46, rtol=-1.0), V, r"^rtol must be positive"),
    ("stats-empty", lambda: stats.mean_se([]), V, r"^x has no samples"),
    ("stats-nan", lambda: stats.mean_se([1.0, NAN]), V, r"^x contains 1 non-finite"),
    ("stats-axis", lambda: stats.mean_se(np.ones((2, 3)), axis=5), V, r"^axis 5 is out of range"),
    ("stats-axis-float", lambda: stats.mean_se(np.ones((2, 3)), axis=1.0), T, r"^axis must be an integer"),
    ("stats-estimate-empty", lambda: stats.estimate([]), V, r"^samples needs at least 1 sample"),
    ("stats-crossed-one", lambda: stats.crossed_mean_se([1.0], [1.0, 2.0]), V, r"^seed_means needs at least 2 sample"),
    ("stats-table", lambda: stats.crossed_table_mean_se(np.ones(3)), V, r"^values must be a \(seeds, tasks\) table"),
    ("stats-ratio-size", lambda: stats.ratio_mean_se([1.0, 2.0], [1.0, 2.0, 3.0]), V, r"^num and den must be paired"),
    ("stats-ratio-zero", lambda: stats.ratio_mean_se([1.0, 2.0], [1.0, -1.0]), V, r"^den has mean 0"),
    ("stats-difference", lambda: stats.crossed_difference_se({}), T, r"^a must be a record"),
    ("stats-z", lambda: stats.Estimate(1.0, 0.1, 3).z(NAN), V, r"^reference must be finite"),
    ("train-checkpoints-steps", lambda: training.checkpoint_steps(0, 3), V, r"^steps must be a positive"),
    ("train-checkpoints-n", lambda: training.checkpoint_steps(10, 0), V, r"^checkpoints must be a positive"),
    ("train-ortho-alpha", lambda: training.orthogonal_init_scale(0.0, 2), V, r"^alpha must be positive"),
    ("train-ortho-depth", lambda: training.orthogonal_init_scale(0.1, 0), V, r"^depth must be a positive"),
    ("train-bounds", lambda: training.train_with_checkpoints(P, FAM, R, bounds=[0, 5, 3], lr=0.01, lr_drop=0.1, K=3,
                                                             tasks_per_step=4, seed=[0]), V,
     r"^bounds must be increasing checkpoint steps"),
    ("train-bounds-seed", lambda: training.train_with_checkpoints(P, FAM, R, bounds=[0, 5], lr=0.01, lr_drop=0.1, K=3,
                                                                  tasks_per_step=4, seed=0), T,
     r"^seed must be a sequence of ints"),
    ("train-two-phase-widths", lambda: training.train_two_phase(FAM, 4, R, steps=2, lr=0.01, K=3, tasks_per_step=4,
                                                                seeds=1, seed=[0], init_seed=[0]), T,
     r"^widths must be a sequence of ints"),
]

if torch is not None:
    BAD += [
        ("torch-mixed-backends", lambda: lm.meta_loss(lm.ArrayBackend("torch").tree(P), B.support, B.query, R), V,
         r"params: torch on cpu; support, query: numpy"),
        ("torch-quad-A-nan", lambda: lm.QuadraticLoss(torch.full((2, 3, 3), NAN, dtype=torch.float64),
                                                      torch.zeros(2, 3, 1, dtype=torch.float64),
                                                      torch.zeros(2, dtype=torch.float64)), V, r"^A contains 18 non-finite"),
        ("torch-quad-A-nonpsd", lambda: lm.QuadraticLoss(-torch.eye(3, dtype=torch.float64)[None],
                                                         torch.zeros(1, 3, 1, dtype=torch.float64),
                                                         torch.zeros(1, dtype=torch.float64)), V,
         r"^A must be positive semi-definite"),
        ("torch-quad-A-complex", lambda: lm.QuadraticLoss(torch.eye(3, dtype=torch.complex128)[None],
                                                          torch.zeros(1, 3, 1, dtype=torch.float64),
                                                          torch.zeros(1, dtype=torch.float64)), T, r"^A must be a real tensor"),
        ("torch-quad-mixed", lambda: lm.QuadraticLoss(torch.eye(3, dtype=torch.float64)[None], np.zeros((1, 3, 1)),
                                                      np.zeros(1)), V, r"A: torch on cpu; B, c: numpy"),
        ("torch-logit-y", lambda: lm.LogisticLoss(torch.ones(2, 4, 3, dtype=torch.float64),
                                                  torch.full((2, 4), 5.0, dtype=torch.float64)), V, r"^y must hold labels"),
        ("torch-params-nan", lambda: lm.meta_loss(lm.ArrayBackend("torch").tree((np.full((4, 3), NAN), P[1])),
                                                  B.support.to("torch"), B.query.to("torch"), R), V,
         r"^params\[0\] contains 12 non-finite"),
        ("torch-phi-nan", lambda: lm.meta_loss(lm.ArrayBackend("torch").tree(P), B.support.to("torch"),
                                               B.query.to("torch"), R, "meta-sgd",
                                               lm.ArrayBackend("torch").tree(_phi_msgd(np.full((4, 3), NAN)))), V,
         r"^phi\[0\]\[0\] contains 12 non-finite"),
    ]

_IDS = [c[0] for c in BAD]
assert len(set(_IDS)) == len(_IDS), "duplicate case ids"

# messages that are not linmeta's own (raw numpy/torch/Python text): none may reach a caller
RAW = re.compile(r"operands could not be broadcast|invalid literal for int|object is not iterable|has no attribute|"
                 r"index \d+ is out of bounds|Singular matrix|unhashable type|matmul: Input operand|"
                 r"can't multiply sequence|not supported between instances")


@pytest.mark.parametrize("case", BAD, ids=_IDS)
def test_bad_input_gets_a_clear_error(case):
    _, call, exc, pattern = case
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert not RAW.search(str(info.value)), str(info.value)
    if exc is TypeError:  # a wrong type is linmeta's ArgumentTypeError, which ValueError handlers catch too
        assert isinstance(info.value, ArgumentTypeError), type(info.value)


def test_the_battery_is_large_and_names_its_outcomes():
    counts = {"ValueError": 0, "TypeError": 0, "DivergenceError": 0}
    for _, _, exc, _ in BAD:
        counts[exc.__name__] += 1
    assert len(BAD) >= 200, counts
    assert all(counts.values()), counts


# --------------------------------------------------------------------- part 2: finite inputs, finite results


def _nonfinite(out) -> bool:
    """Whether a result (arrays, numbers, tuples, dicts, dataclasses) holds a NaN or an infinity."""
    if isinstance(out, (bool, str)) or out is None:
        return False
    if torch is not None and isinstance(out, torch.Tensor):
        return not bool(torch.isfinite(out).all())
    if isinstance(out, (int, float, complex, np.ndarray, np.generic)):
        arr = np.asarray(out)
        return arr.dtype.kind in "fc" and not bool(np.all(np.isfinite(arr)))
    if isinstance(out, dict):
        return any(_nonfinite(v) for v in out.values())
    if isinstance(out, (tuple, list)):
        return any(_nonfinite(v) for v in out)
    if dataclasses.is_dataclass(out):
        return any(_nonfinite(getattr(out, f.name)) for f in dataclasses.fields(out))
    return False


def _loss_of(cov=None, noise=0.0, d=3, K=5, scale=1.0, n=5):
    fam = lm.GaussianRegression(d=d, cov=scale**2, input_cov=cov, noise_std=noise)
    return lm.meta_batch(fam.sample_tasks(n, 0), K, None, 1)


ZERO_COV = _loss_of(cov=np.zeros((3, 3)))
RANK1 = _loss_of(cov=np.outer([1.0, 2.0, 0.0], [1.0, 2.0, 0.0]))
ONE_SHOT = _loss_of(K=1)
HUGE_TASKS = _loss_of(scale=1e100)
TINY_TASKS = _loss_of(scale=1e-150)
NOISY = _loss_of(noise=1e100)
P_TINY = lm.init_deep_linear(3, (4,), 1, rng=2, scale=1e-150)
P_HUGE = lm.init_deep_linear(3, (4,), 1, rng=2, scale=1e150)
P_ZERO = tuple(np.zeros_like(W) for W in P)

EDGE = [
    # (id, call): each must return finite values or raise a clear error
    *[(f"meta-loss-alpha-{a:g}-steps-{k}", (lambda a=a, k=k: lm.meta_loss(P, B.support, B.query, lm.InnerLoop(k, a))))
      for a in (1e3, 1e100, 1e300, -1e300, 1e-300) for k in (1, 2, 5)],
    *[(f"value-and-grad-alpha-{a:g}-steps-{k}",
       (lambda a=a, k=k: lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(k, a))))
      for a in (50.0, 1e150, -1e150) for k in (1, 3)],
    *[(f"value-and-grad-{name}-alpha-{a:g}",
       (lambda name=name, a=a: lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(3, a), name)))
      for name in ("meta-sgd", "kfo", "kfo-nonpsd", "kfo-updating", "meta-curvature") for a in (0.1, 1e100)],
    *[(f"adapt-alpha-{a:g}", (lambda a=a: lm.adapt(P, B.support, lm.InnerLoop(4, a)))) for a in (1e10, 1e200)],
    *[(f"adapted-map-alpha-{a:g}", (lambda a=a: lm.adapted_map(P, B.support, lm.InnerLoop(4, a)))) for a in (1e10, -1e200)],
    *[(f"loss-{name}", (lambda b=b: lm.meta_value_and_grad(P, b.support, b.query, lm.InnerLoop(2, 0.1))))
      for name, b in (("zero-cov", ZERO_COV), ("rank-1-cov", RANK1), ("one-shot", ONE_SHOT), ("huge-tasks", HUGE_TASKS),
                      ("tiny-tasks", TINY_TASKS), ("huge-noise", NOISY))],
    *[(f"params-{name}", (lambda p=p: lm.meta_value_and_grad(p, B.support, B.query, lm.InnerLoop(2, 0.1))))
      for name, p in (("tiny", P_TINY), ("huge", P_HUGE), ("zero", P_ZERO))],
    ("pre-adaptation-huge", lambda: lm.pre_adaptation_loss(P_HUGE, B.query)),
    ("end-to-end-huge", lambda: lm.end_to_end(P_HUGE)),
    ("end-to-end-tiny", lambda: lm.end_to_end(P_TINY)),
    ("population-huge-noise", lambda: lm.GaussianRegression(d=3, noise_std=1e200).sample_tasks(2, 0).population()),
    ("moments-huge-inputs", lambda: lm.GaussianRegression(d=3, input_cov=1e300 * EYE3).sample_tasks(2, 0).moments(3, 0)),
    ("logistic-huge-alpha", lambda: lm.meta_value_and_grad(P, *BIN.meta_batch(WBIN, 4, 4, 0).__dict__.values(),
                                                           lm.InnerLoop(3, 1e200))),
    ("train-lr-1e6", lambda: lm.meta_train(lm.init_deep_linear(5, (8,), 1, rng=0), lm.GaussianRegression(d=5, noise_std=0.1),
                                           lm.InnerLoop(steps=2, alpha=0.05), steps=1, lr=1e6, optimizer="sgd",
                                           tasks_per_step=16, K=10, Q=None, eval_tasks=32).history),
    ("train-lr-tiny", lambda: _mt(lr=1e-300).history),
    ("train-adam-huge-lr", lambda: _mt(lr=1e200, steps=3).history),
    ("train-zero-cov", lambda: _mt(family=lm.GaussianRegression(d=3, input_cov=np.zeros((3, 3)))).history),
    # theory on extreme but finite inputs
    *[(f"shallow-alpha-{a:g}", (lambda a=a: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 5, a, 2)))
      for a in (1e100, -1e100, 1e-300)],
    ("shallow-population-long", lambda: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, None, 3.0, 2000)),
    ("shallow-huge-M", lambda: shallow.expected_meta_loss(np.full((1, 3), 1e200), FAM, 5, 0.1, 1)),
    ("shallow-optimum-degenerate", lambda: shallow.maml_optimum(lm.GaussianRegression(d=3, input_cov=np.zeros((3, 3))),
                                                                5, 0.1)),
    ("shallow-floor-zero-cov", lambda: shallow.shallow_floor(lm.GaussianRegression(d=3, input_cov=np.zeros((3, 3))),
                                                             None, 0.1)),
    ("depth-huge", lambda: depth.scalar_deep_meta_loss(1e200, 1e200, 0.1)),
    ("depth-huge-alpha", lambda: depth.scalar_deep_meta_loss(1.0, 1.0, 1e200)),
    ("depth-shallow-huge", lambda: depth.scalar_shallow_meta_loss(1e300, 1e10)),
    ("deep-one-step-huge-alpha", lambda: deep_one_step.expected_meta_loss(P, TASKS, 5, lm.InnerLoop(1, 1e200))),
    ("anil-huge-alpha", lambda: anil.anil_expected_loss(P, FAM, 5, 1e200)),
    ("anil-vote-huge", lambda: anil.zero_head_vote(np.full((4, 2), 1e200), np.ones((4, 1)), np.full((2, 2), 1e200), 1.0)),
    ("landscape-gain-huge-alpha", lambda: landscape.gain(MIX, 5, 1e100)),
    ("landscape-gain-solved", lambda: landscape.gain(lm.GaussianRegression(d=3, cov=0.0), None, 1.0)),
    ("landscape-curvature-fresh-long", lambda: landscape.curvature(EYE3, 5, 5.0, 500, sampling="fresh")),
    ("metaopt-zero-R", lambda: metaopt.optimal_diagonal_preconditioner(EYE3, np.zeros((3, 3)), None)),
    ("metaopt-huge-R", lambda: metaopt.one_step_loss(EYE3, EYE3, 1e300 * EYE3, 5)),
    ("metaopt-softplus-huge", lambda: metaopt.expected_softplus(1e300)),
    ("precondition-huge", lambda: precondition.implicit_matrix(P_HUGE)),
    ("similarity-huge", lambda: similarity.linear_cka(1e200 * EYE3, EYE3)),
    ("similarity-tiny", lambda: similarity.linear_cka(1e-200 * EYE3, EYE3)),
    ("stats-huge", lambda: stats.mean_se([1e308, 1e308])),
    ("stats-ratio-tiny", lambda: stats.ratio_mean_se([1.0, 2.0], [1e-320, 2e-320])),
    ("mc-huge-alpha", lambda: montecarlo.expected_meta_loss_mc(P, TASKS, 5, lm.InnerLoop(3, 1e100), draws=2, rng=0)),
    ("training-ortho-tiny-alpha", lambda: training.orthogonal_init_scale(1e-300, 2, 1e300)),
]


@pytest.mark.parametrize("case", EDGE, ids=[c[0] for c in EDGE])
def test_nothing_non_finite_from_finite_inputs(case):
    _, call = case
    try:
        out = call()
    except lm.DivergenceError as exc:
        assert "diverged" in str(exc)
        return
    except (ValueError, TypeError) as exc:
        assert not RAW.search(str(exc)), str(exc)
        return
    assert not _nonfinite(out), out


def test_finiteness_part_covers_enough_calls():
    assert len(EDGE) >= 60


# -------------------------------------------------------------------------- part 3: one test per defect
# the setup: p, fam, b, r = P, FAM, B, R


def test_defect_01_divergence_in_the_last_outer_step_raises():
    for lr in (1e100, 1e6):  # NaN and 3.8e197 in the issue
        with pytest.raises(lm.DivergenceError, match="diverged at outer step 1") as info:
            lm.meta_train(lm.init_deep_linear(5, (8,), 1, rng=0), lm.GaussianRegression(d=5, noise_std=0.1),
                          lm.InnerLoop(steps=2, alpha=0.05), steps=1, lr=lr, optimizer="sgd", tasks_per_step=16, K=10,
                          Q=None, eval_tasks=32)
        assert info.value.step == 1 and np.all(np.isfinite(info.value.last_finite_loss))
        assert np.all(np.isfinite(info.value.inner_step_bound))


def test_defect_02_non_finite_update_is_divergence_and_bad_momentum_a_value_error():
    with pytest.raises(lm.DivergenceError, match="parameters after the update are not finite"):
        _mt(optimizer="sgd", lr=1e308, lr_schedule=lambda s: 10.0)
    with pytest.raises(ValueError, match="^momentum must be finite"):
        _mt(optimizer="sgd", momentum=NAN)


def test_defect_03_eval_every_zero_and_nan_divergence_factor_refused_before_any_step():
    steps_run = []
    with pytest.raises(ValueError, match="^eval_every must be a positive integer"):
        _mt(eval_every=0, callback=lambda *a: steps_run.append(a[0]))
    with pytest.raises(ValueError, match="^divergence_factor must be finite"):
        _mt(divergence_factor=NAN, callback=lambda *a: steps_run.append(a[0]))
    assert steps_run == []


def test_defect_04_engine_overflow_raises_divergence():
    with pytest.raises(lm.DivergenceError, match="non-finite output"):
        lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(steps=2, alpha=1e200))
    with pytest.raises(lm.DivergenceError, match="exploded") as info:
        lm.meta_value_and_grad(P, B.support, B.query, lm.InnerLoop(steps=3, alpha=50.0))
    assert np.all(50.0 > info.value.inner_step_bound)


def test_defect_05_quadratic_loss_is_validated():
    A = np.broadcast_to(EYE3, (5, 3, 3)).copy()
    with pytest.raises(ValueError, match="^A contains"):
        lm.meta_loss(P, lm.QuadraticLoss(np.full((5, 3, 3), NAN), B.support.B, B.support.c), B.query, R)
    with pytest.raises(ValueError, match="^A must be symmetric"):
        lm.QuadraticLoss(NONSYM[None], np.zeros((1, 3, 1)), np.zeros(1))
    with pytest.raises(ValueError, match="^A must be positive semi-definite"):
        lm.QuadraticLoss(NEG[None], np.zeros((1, 3, 1)), np.zeros(1))
    with pytest.raises(ValueError, match="^B must have shape"):
        lm.QuadraticLoss(A, np.zeros((5, 2, 1)), np.zeros(5))
    # round-off asymmetry and a singular PSD matrix are fine
    Xs = np.random.default_rng(0).standard_normal((5, 2, 3))
    lm.QuadraticLoss(Xs.transpose(0, 2, 1) @ Xs / 2 + 1e-14 * np.triu(np.ones((3, 3)), 1), np.zeros((5, 3, 1)), np.zeros(5))


def test_defect_06_logistic_loss_is_validated():
    with pytest.raises(ValueError, match="^X contains"):
        lm.LogisticLoss(np.full((2, 4, 3), NAN), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"^y must hold labels in \[0, 1\]"):
        lm.LogisticLoss(np.ones((2, 4, 3)), np.full((2, 4), 5.0))
    with pytest.raises(ValueError, match=r"^y must have shape \(\*batch, T, n\)"):
        lm.LogisticLoss(np.ones((2, 4, 3)), np.zeros((2, 3)))
    loss = lm.LogisticLoss(np.ones((2, 4, 3)), np.ones((2, 4), bool))  # boolean labels are 0/1
    assert loss.y.dtype == np.float64 and np.all(loss.y == 1.0)


def test_defect_07_empty_inputs_are_refused():
    for X, Y in ((np.zeros((2, 0, 3)), np.zeros((2, 0, 1))), (np.zeros((0, 4, 3)), np.zeros((0, 4, 1)))):
        with pytest.raises(ValueError, match="a loss needs at least one task"):
            lm.SquaredLoss(X, Y)
    with pytest.raises(ValueError, match="needs at least one task"):
        lm.TaskBatch(np.zeros((0, 1, 3)), np.eye(3), 0.1)


def test_defect_08_preconditioner_parameters_are_validated():
    with pytest.raises(ValueError, match="^init_value must be finite"):
        lm.MetaSGD(init_value=NAN)
    with pytest.raises(ValueError, match=r"^phi\[0\]\[0\] contains"):
        lm.meta_loss(P, B.support, B.query, R, "meta-sgd", _phi_msgd(np.full((4, 3), NAN)))
    with pytest.raises(ValueError, match=r"^phi\[1\]\[0\] must have shape \(1, 4\)"):
        lm.meta_loss(P, B.support, B.query, R, "meta-sgd", ((np.ones((4, 3)),), (np.ones((4, 1)),)))
    for bad in ("no", 1, None):
        with pytest.raises(TypeError, match="^psd must be True or False"):
            lm.KFO(psd=bad)
        with pytest.raises(TypeError, match="^update_factors must be True or False"):
            lm.KFO(update_factors=bad)
    assert lm.KFO(psd=np.bool_(False)) == lm.KFO(psd=False)


def test_defect_09_layer_indices_are_not_coerced():
    for layers, pos in (((1.5,), 0), ((True,), 0), ((0, 0.9), 1), (("a",), 0), ((0, np.float64(1.0)), 1)):
        with pytest.raises(TypeError, match=rf"^layers\[{pos}\] must be an integer layer index"):
            lm.InnerLoop(layers=layers)
    assert lm.InnerLoop(layers=[np.int64(1), 0]).layers == (1, 0)  # integers of any kind are fine


def test_defect_10_errors_name_the_argument():
    with pytest.raises(ValueError, match="^K must be a positive integer or None"):
        lm.meta_batch(FAM.sample_tasks(5, 0), 0, None, 1)
    with pytest.raises(ValueError, match="^eval_tasks must be a positive integer"):
        lm.meta_train(P, FAM, R, steps=2, eval_tasks=0)
    with pytest.raises(TypeError, match="^widths must be a sequence of ints"):
        lm.init_deep_linear(3, 32, 1, rng=0)
    with pytest.raises(TypeError, match=r"^layers\[0\] must be an integer"):
        lm.InnerLoop(layers=("a",))


def test_defect_11_messages_instead_of_attribute_errors():
    with pytest.raises(TypeError, match="^support must be a loss object"):
        lm.meta_value_and_grad(P, None, B.query, R)
    with pytest.raises(TypeError, match="^rule must be a linmeta.InnerLoop"):
        lm.meta_train(P, FAM, None, steps=2)
    with pytest.raises(TypeError, match="^tasks must be a linmeta.TaskBatch"):
        lm.meta_batch(np.zeros((5, 1, 3)), 6, None, 1)
    with pytest.raises(TypeError, match=r"^components\[0\] must be"):
        lm.TaskMixture((1, 2), (0.5, 0.5))


def test_defect_12_task_families_are_validated():
    with pytest.raises(ValueError, match="^mean contains"):
        lm.BinaryClassification(d=3, mean=[NAN, 0, 0])
    with pytest.raises(ValueError, match="^input_cov must have shape"):
        lm.BinaryClassification(d=3, input_cov=np.eye(2))
    for fam in (FAM, MIX, BIN):
        with pytest.raises(ValueError, match="^n_runs must be a positive integer"):
            fam.sample_tasks(3, 0, n_runs=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error instead
        with pytest.raises(TypeError, match="^input_cov must be a real array.*complex"):
            lm.GaussianRegression(d=2, input_cov=np.eye(2) * (1 + 1j))


def test_defect_13_shallow_closed_form_checks_its_step_limit_up_front():
    import time

    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"^steps=5 .* \(steps <= 4\)"):
        shallow.expected_meta_loss(np.zeros((1, 3)), FAM, 5, 0.1, 5)
    assert time.perf_counter() - t0 < 1.0  # it failed at once (it ran 7 minutes before)
    assert shallow.MAX_SUPPORT_STEPS == 4
    # the population inner loss has no such limit
    assert np.isfinite(shallow.expected_meta_loss(np.zeros((1, 3)), FAM, None, 0.1, 5))


def test_defect_14_point_arguments_are_validated():
    with pytest.raises(ValueError, match="^M contains 3 non-finite"):
        shallow.expected_meta_loss(np.full((1, 3), NAN), FAM, 5, 0.1, 1)
    with pytest.raises(ValueError, match="^w1 contains 1 non-finite"):
        depth.scalar_deep_meta_loss(NAN, 1, 0.1)
    with pytest.raises(ValueError, match=r"^M must have shape \(out, d\) = \(1, 3\)"):
        shallow.expected_meta_loss(np.zeros((3, 1)), FAM, 5, 0.1, 1)


# ---------------------------------------------------------------------------- part 4: a hypothesis property

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

# integer arguments of public calls: (name, call taking the value)
INT_ARGS = [
    ("steps", lambda v: lm.InnerLoop(steps=v)),
    ("d", lambda v: lm.GaussianRegression(d=v)),
    ("out", lambda v: lm.init_deep_linear(3, (), v, rng=0)),
    ("n_tasks", lambda v: FAM.sample_tasks(v, 0)),
    ("n_runs", lambda v: MIX.sample_tasks(2, 0, n_runs=v)),
    ("K", lambda v: lm.meta_batch(TASKS, v, None, 0)),
    ("K", lambda v: shallow.expected_meta_loss(np.zeros((1, 3)), FAM, v, 0.1, 1)),
    ("n", lambda v: TASKS.sample_data(v, 0)),
    ("draws", lambda v: montecarlo.post_adaptation_samples(P, TASKS, 5, R, draws=v, rng=0)),
    ("eval_tasks", lambda v: _mt(eval_tasks=v)),
]

if given is not None:
    bad_ints = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                         st.text(max_size=3), st.complex_numbers(), st.just([1]))

    @settings(max_examples=60, deadline=None)
    @given(arg=st.sampled_from(INT_ARGS), value=bad_ints)
    def test_bad_integer_arguments_are_named(arg, value):
        name, call = arg
        if name == "steps" and type(value) is int and value == 0:
            return  # steps=0 is valid (no adaptation)
        with pytest.raises((ValueError, TypeError)) as info:
            call(value)
        assert str(info.value).startswith(f"{name} must be"), str(info.value)
