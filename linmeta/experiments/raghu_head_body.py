"""Head or body?  Splitting MAML's one-step loss reduction over meta-training (Raghu × Arnold).

A two-layer linear network ``M = W_2 W_1`` is meta-trained with MAML (K-shot support, Adam) on the
isotropic and the low-rank families.  At checkpoints, one inner step on a task's population loss is
split (:func:`linmeta.sim.head_body.head_body_split`) into the loss reduction due to the head's update
(ANIL's step, right-preconditioned by the body's Gram matrix ``W_1ᵀW_1``: *feature reuse*), the
body's update (left-preconditioned by ``W_2W_2ᵀ``: the body's own adaptation, Arnold et al.'s
"upper layers as meta-optimizer" seen from the head), and their interaction (the ``α²`` cross term).

Theory: for two layers the expected head and body reductions over Gaussian tasks are exact
closed forms (:func:`linmeta.theory.anil.two_layer_split_expectation`), checked against the Monte
Carlo average over tasks; the first-order (preconditioner) split is shown dashed.  Raghu et al.'s
feature-reuse reading predicts that the head's share dominates; the checks report the share at
the end of training.
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop, init_deep_linear
from ..meta import meta_value_and_grad
from .. import as_generator
from ..theory import anil
from . import plotting
from .base import Experiment, Param, above, as_finding, close_se
from ..sim.families import REPRESENTATION_FAMILIES as FAMILIES
from ..sim.head_body import head_body_split
from ..sim.families import representation_family
from ..sim.training import orthogonal_init_scale

PARAMS = {
    "d": Param(int, 10, 16, low=2, high=200, help="input dimension"),
    "k": Param(int, 2, 3, low=1, high=50, help="rank of B* (low-rank family) / total task variance"),
    "width": Param(int, 10, 16, low=1, high=10000, help="hidden width of the two-layer network"),
    "K": Param(int, 5, 5, low=1, high=1000, help="support shots during training"),
    "alpha": Param(float, 0.1, 0.1, low=1e-4, high=2.0, help="inner step size"),
    "noise": Param(float, 0.2, 0.2, low=0.0, high=100.0, help="label noise σ"),
    "mean_norm": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="‖E[w*]‖ of the isotropic family"),
    "steps": Param(int, 600, 5000, low=2, high=1_000_000, help="outer steps"),
    "lr": Param(float, 0.005, 0.002, low=1e-6, high=1.0, help="Adam learning rate"),
    "tasks_per_step": Param(int, 16, 32, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 3, 6, low=2, high=64, help="independent trainings (run axis)"),
    "checkpoints": Param(int, 10, 20, low=2, high=10000, help="checkpoints (log-spaced steps, with 0)"),
    "mc_tasks": Param(int, 400, 4000, low=2, high=1_000_000, help="tasks for the Monte Carlo split at each checkpoint"),
}


def checkpoint_steps(cfg) -> np.ndarray:
    steps = np.unique(np.round(np.geomspace(1, cfg["steps"], cfg["checkpoints"] - 1)).astype(int))
    return np.concatenate([[0], steps])


def _adam_train(params, sampler, rule, cfg, rng, record):
    """Adam on fresh K-shot batches; ``record(step, params)`` at each checkpoint step."""
    marks = set(checkpoint_steps(cfg).tolist())
    m = [np.zeros_like(W) for W in params]
    v = [np.zeros_like(W) for W in params]
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, cfg["lr"]
    n_runs = params[0].shape[0]
    for step in range(cfg["steps"] + 1):
        if step in marks:
            record(step, params)
        if step == cfg["steps"]:
            break
        batch = sampler.meta_batch(sampler.sample_tasks(cfg["tasks_per_step"], rng, n_runs=n_runs), cfg["K"], None, rng)
        g = meta_value_and_grad(params, batch.support, batch.query, rule).params
        t = step + 1
        m = [b1 * a + (1 - b1) * G for a, G in zip(m, g)]
        v = [b2 * a + (1 - b2) * G * G for a, G in zip(v, g)]
        params = tuple(W - lr * (a / (1 - b1**t)) / (np.sqrt(b / (1 - b2**t)) + eps) for W, a, b in zip(params, m, v))
    return params


def _piece(item):
    cfg, f = item["cfg"], item["family"]
    fi = FAMILIES.index(f)
    fam = representation_family(f, cfg["d"], cfg["k"], cfg["noise"], cfg["mean_norm"], cfg["seed"])
    rule = InnerLoop(1, cfg["alpha"], "all")
    params = init_deep_linear(cfg["d"], (cfg["width"],), 1, scheme="orthogonal",
                              scale=orthogonal_init_scale(cfg["alpha"], 2), n_runs=cfg["seeds"],
                              rng=np.random.SeedSequence([cfg["seed"], 601, fi]))
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 602, fi]))
    eval_rng = as_generator(np.random.SeedSequence([cfg["seed"], 603, fi]))
    rec = {k: [] for k in ("closed_head", "closed_body", "closed_head_linear", "closed_body_linear",
                           "total", "head", "body", "interaction", "head_se", "body_se", "head_norm", "body_gain")}

    def record(step, p):
        ex = anil.two_layer_split_expectation(p, fam, cfg["alpha"])
        for k in ("head", "body", "head_linear", "body_linear"):
            rec[f"closed_{k}"].append(ex[k])
        pop = fam.sample_tasks(cfg["mc_tasks"], eval_rng).population()
        split = head_body_split(p, pop, pop, cfg["alpha"])
        for k in ("total", "head", "body", "interaction"):
            rec[k].append(getattr(split, k).mean(-1))
        # MC minus the closed form; the runs share the tasks, so average over runs before the SE
        for k in ("head", "body"):
            diff = getattr(split, k).mean(0)
            rec[f"{k}_se"].append(diff.std(ddof=1) / np.sqrt(diff.size))
        rec["head_norm"].append(np.linalg.norm(p[1], axis=(-2, -1)))
        rec["body_gain"].append(np.linalg.norm(p[0], ord=2, axis=(-2, -1)))

    _adam_train(params, fam, rule, cfg, rng, record)
    return {k: np.array(v) for k, v in rec.items()}


def run(cfg, ctx):
    pieces = ctx.map(_piece, [{"cfg": cfg, "family": f} for f in FAMILIES], desc="raghu_head_body")
    res = dict(zip(FAMILIES, pieces))
    res["steps"] = checkpoint_steps(cfg)
    return res


@plotting.styled
def plot(res, cfg):
    # closed form as lines, Monte Carlo as points; the bars are ±2 MC SE of the part (over the evaluation tasks)
    # divided by the mean total, which is the share's MC error with the total held fixed
    fig, axes = plotting.figure(len(FAMILIES), width="text", height=3.1, sharey=True)
    x = np.maximum(res["steps"], 0.5)
    names = {"head": "head update (ANIL step)", "body": "body update"}
    for ax, f in zip(axes, FAMILIES):
        r = res[f]
        tot = r["total"].mean(1)
        for i, k in enumerate(("head", "body")):
            c = plotting.COLORS[i]
            ax.plot(x, r[f"closed_{k}"].mean(1) / tot, "-", color=c, label=f"{names[k]}: closed form")
            ax.plot(x, r[f"closed_{k}_linear"].mean(1) / tot, "--", color=c, lw=0.8,
                    label=f"{k}: its first-order (preconditioner) part")
            plotting.errorbars(ax, x, r[k].mean(1) / tot, r[f"{k}_se"] / tot, k=2, color=c,
                               label=f"{k}: Monte Carlo ($\\pm$2 SE)")
        ax.plot(x, r["interaction"].mean(1) / tot, "D", color=plotting.COLORS[2], ms=3, ls="",
                label="interaction ($\\alpha^2$ cross term), Monte Carlo")
        ax.axhline(0.5, color=plotting.GREY, ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("outer step (0 shown at 0.5)")
        ax.set_title(f"{f.replace('_', '-')} tasks, 2 layers (width {cfg['width']})")
    axes[0].set_ylabel("share of MAML's one-step loss reduction")
    plotting.label_panels(axes)
    plotting.figlegend(fig, axes[:1])
    return plotting.finish(fig, "Head or body? MAML's one-step loss reduction split over meta-training")


def checks(res, cfg):
    out = []
    for f in FAMILIES:
        r = res[f]
        for k in ("head", "body"):
            closed = float(r[f"closed_{k}"][-1].mean())
            out.append(close_se(f"{f}: {k} reduction at the end, MC = closed form", closed,
                                float(r[k][-1].mean()), float(r[f"{k}_se"][-1]), claim="raghu.head-body-split"))
        share = r["head"][-1] / r["total"][-1]
        m, s = float(share.mean()), float(share.std(ddof=1) / np.sqrt(share.size))
        out.append(as_finding(above(f"{f}: head's share of the one-step reduction > 0.5 at the end (feature "
                                    f"reuse); body {float((r['body'][-1] / r['total'][-1]).mean()):.2f}", 0.5, m, s),
                              claim="raghu.feature-reuse-share"))
    return out


EXPERIMENT = Experiment(
    name="raghu_head_body",
    paper="Raghu et al. 2020; Arnold et al. 2021",
    figure="new (Raghu × Arnold)",
    claim="After meta-training, MAML's one-step loss reduction comes mostly from the head's update (feature reuse).",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
