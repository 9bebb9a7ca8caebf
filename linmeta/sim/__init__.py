"""Shared simulation: the engine-driven side of every theory-vs-simulation comparison.

Modules (each imported by ``import linmeta.sim``):

* :mod:`~linmeta.sim.stats`            standard errors, one helper per estimator;
* :mod:`~linmeta.sim.montecarlo`       Monte Carlo estimates of expected meta-losses and related limits;
* :mod:`~linmeta.sim.evaluation`       fresh test sets and post-adaptation losses per run and task;
* :mod:`~linmeta.sim.training`         meta-training recipes (checkpointed Adam, two-phase runs);
* :mod:`~linmeta.sim.families`         task families with a planted low-rank structure;
* :mod:`~linmeta.sim.representations`  layer features and their CKA / CCA from samples;
* :mod:`~linmeta.sim.head_body`        the engine-evaluated head/body split of one MAML step;
* :mod:`~linmeta.sim.negative_lr`      Bernacchia's mixed linear regression: the exact MAML least-squares estimator;
* :mod:`~linmeta.sim.tradeoff`         Gao & Sener's MAML and DRS estimators, batched over trials;
* :mod:`~linmeta.sim.stability_sweep`  divergence boundaries of N-step MAML meta-training, by growth rate and bisection;
* :mod:`~linmeta.sim.fo_bias`          SGD-trained MAML and FO-MAML on paired task streams;
* :mod:`~linmeta.sim.separation`       the line-task instance: convex learners and meta-trained two-layer nets.

The simulation may use the engine and the closed forms of :mod:`linmeta.theory`; theory never
uses the simulation.
"""
from . import (evaluation, families, fo_bias, head_body, montecarlo, negative_lr, representations, separation,
               stability_sweep, stats, tradeoff, training)

__all__ = ["evaluation", "families", "fo_bias", "head_body", "montecarlo", "negative_lr", "representations",
           "separation", "stability_sweep", "stats", "tradeoff", "training"]
