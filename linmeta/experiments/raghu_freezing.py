"""Raghu et al. (2020), Table 1 analogue: freezing the lower layers' inner update at test time.

A deep linear network (depth 4 by default: three body layers and a head, like the paper's four
conv layers and classifier) is meta-trained with MAML.  At test time the inner update of layers
1..j is skipped (they keep their meta-learned values) and the post-adaptation loss is measured for
every j = 0..L: j = 0 is MAML, j = L−1 adapts only the head (ANIL at test time) and j = L adapts
nothing.  All j are scored on the same test tasks and support sets (paired comparisons).

Theory: for j = L−1 the expected loss is the exact one-step ANIL closed form
(:func:`linmeta.theory.anil.anil_expected_loss`) and for j = L the no-adaptation closed form
(:func:`linmeta.theory.anil.nal_expected_loss`); both are checked against the Monte Carlo values.

Raghu et al.'s claim is that freezing the body costs almost nothing (5-shot MiniImageNet: 61.7 % with
no layer frozen, 60.2 % with all four conv layers frozen, i.e. 96.4 % of the gain over chance kept).
The check asks whether freezing the whole body keeps at least that share of the adaptation gain
``ℓ(no adaptation) − ℓ(MAML)``.
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop
from ..theory import anil
from . import plotting
from .base import Check, Experiment, Param, close_se
from .. import to_numpy
from ..sim.evaluation import post_adaptation_losses, test_set
from ..sim.families import REPRESENTATION_FAMILIES as FAMILIES
from ..sim.families import representation_family
from ..sim.stats import crossed_difference_se
from ..sim.training import train_two_phase

RAGHU_KEPT = (60.2 - 20.0) / (61.7 - 20.0)  # Table 1, 5-shot, 5-way (chance 20 %): share of the gain kept

PARAMS = {
    "d": Param(int, 10, 16, low=2, high=200, help="input dimension"),
    "k": Param(int, 2, 3, low=1, high=50, help="rank of B* (low-rank family) / total task variance"),
    "widths": Param("ints", (10, 10, 10), (16, 16, 16), low=1, high=10000, help="hidden widths (depth = len + 1)"),
    "K": Param(int, 5, 5, low=1, high=1000, help="support shots"),
    "alpha": Param(float, 0.1, 0.1, low=1e-4, high=2.0, help="inner step size"),
    "noise": Param(float, 0.2, 0.2, low=0.0, high=100.0, help="label noise σ"),
    "mean_norm": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="‖E[w*]‖ of the isotropic family"),
    "steps": Param(int, 500, 4000, low=1, high=1_000_000, help="outer steps (then steps/2 more at lr/10)"),
    "lr": Param(float, 0.01, 0.003, low=1e-6, high=1.0, help="Adam learning rate"),
    "tasks_per_step": Param(int, 16, 32, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent trainings (run axis)"),
    "eval_tasks": Param(int, 2000, 5000, low=10, high=1_000_000, help="test tasks (one support set each)"),
}


def _rule(alpha, depth, j):
    """Inner rule with layers 1..j frozen (0-based: layers j..L-1 adapt)."""
    return InnerLoop(1, alpha, tuple(range(j, depth)) if j < depth else "none")


def _piece(item, backend=None):
    cfg, f = item["cfg"], item["family"]
    fi = FAMILIES.index(f)
    fam = representation_family(f, cfg["d"], cfg["k"], cfg["noise"], cfg["mean_norm"], cfg["seed"])
    L = len(cfg["widths"]) + 1
    params = train_two_phase(fam, cfg["widths"], InnerLoop(1, cfg["alpha"], "all"), steps=cfg["steps"], lr=cfg["lr"],
                        K=cfg["K"], tasks_per_step=cfg["tasks_per_step"], seeds=cfg["seeds"],
                        seed=[cfg["seed"], 201, fi], init_seed=[cfg["seed"], 202, fi],
                        backend=backend)
    params = tuple(to_numpy(W) for W in params)  # trained on the backend; evaluated on the host
    mc, mc_se, task_mean = [], [], []
    for j in range(L + 1):
        # the same seed for every j: the same tasks and support sets
        batch, tasks = test_set(fam, cfg["K"], cfg["eval_tasks"], np.random.SeedSequence([cfg["seed"], 203, fi]),
                                return_tasks=True)
        vals = post_adaptation_losses(params, batch, _rule(cfg["alpha"], L, j))
        mc.append(vals.mean(-1))
        mc_se.append(vals.std(-1, ddof=1) / np.sqrt(vals.shape[-1]))
        task_mean.append(vals.mean(0))
        if j == L - 1:
            closed_tasks = anil.anil_expected_task_loss(params, tasks, cfg["K"], cfg["alpha"])
            cond_closed = closed_tasks.mean()
            cond = (vals - closed_tasks).mean(0)
    return {"mc": np.array(mc), "mc_se": np.array(mc_se), "mc_task_mean": np.array(task_mean),
            "head_only_closed": anil.anil_expected_loss(params, fam, cfg["K"], cfg["alpha"]),
            "head_only_cond_closed": cond_closed, "head_only_cond_diff": cond.mean(),
            "head_only_cond_diff_se": cond.std(ddof=1) / np.sqrt(cond.size),
            "frozen_closed": anil.nal_expected_loss(params, fam)}


def run(cfg, ctx):
    items = [{"cfg": cfg, "family": f} for f in FAMILIES]
    pieces = ctx.map(_piece, items, desc="raghu_freezing")
    return {f: p for f, p in zip(FAMILIES, pieces)}


def _stats(r, j, weights=None):
    """Two-way mean and SE of a linear combination ``Σ_j w_j ℓ_j`` of the per-j losses."""
    w = np.zeros(r["mc"].shape[0])
    if weights is None:
        w[j] = 1.0
    else:
        for jj, ww in weights.items():
            w[jj] += ww
    combo = {"mc": w @ r["mc"], "mc_task_mean": w @ r["mc_task_mean"]}
    return crossed_difference_se(combo)


@plotting.styled
def plot(res, cfg):
    L = len(cfg["widths"]) + 1
    fig, axes = plotting.figure(len(FAMILIES), width="text", height=2.8)
    js = np.arange(L + 1)
    for ax, f in zip(axes, FAMILIES):
        r = res[f]
        stats = [_stats(r, j) for j in js]
        ax.plot(js, r["mc"], "-", color=plotting.COLORS[0], alpha=0.25, lw=0.7)
        plotting.errorbars(ax, js, [s[0] for s in stats], [s[1] for s in stats], k=2, color=plotting.COLORS[0],
                           label="Monte Carlo (mean over seeds $\\pm$2 SE; faint: each seed)")
        ax.plot([L - 1], [np.mean(r["head_only_closed"])], "x", color=plotting.COLORS[1], ms=7, mew=1.5,
                label="closed form: head only (ANIL step)")
        ax.plot([L], [np.mean(r["frozen_closed"])], "+", color=plotting.COLORS[1], ms=9, mew=1.5,
                label="closed form: nothing adapts")
        ax.set_xticks(js, ["none"] + [f"1..{j}" for j in js[1:]])
        ax.set_xlabel("layers whose inner update is skipped at test time")
        ax.set_ylabel(f"post-adaptation loss ($K={cfg['K']}$)")
        ax.set_title(f"MAML-trained, depth {L}, {f.replace('_', '-')} tasks")
    plotting.label_panels(axes)
    plotting.figlegend(fig, axes[:1])
    return plotting.finish(fig, "Raghu et al. Table 1 in deep linear nets: freezing layers at test time")


def checks(res, cfg):
    L = len(cfg["widths"]) + 1
    out = []
    for f in FAMILIES:
        r = res[f]
        cc = float(r["head_only_cond_closed"])
        out.append(close_se(f"{f}: layers 1..{L - 1} frozen, MC = ANIL closed form on the same test tasks", cc,
                            cc + float(r["head_only_cond_diff"]), float(r["head_only_cond_diff_se"]),
                            claim="raghu.anil-closed-form"))
        m, s = _stats(r, L)
        out.append(close_se(f"{f}: all frozen, MC = closed form", float(np.mean(r["frozen_closed"])), m, s,
                            claim="raghu.anil-closed-form"))
        # loss increase from freezing the body minus the increase Raghu's Table 1 allows (a share of the gain)
        allowed = 1.0 - RAGHU_KEPT
        m, s = _stats(r, None, {L - 1: 1.0, 0: -1.0 + allowed, L: -allowed})
        gain, _ = _stats(r, None, {L: 1.0, 0: -1.0})
        cost, _ = _stats(r, None, {L - 1: 1.0, 0: -1.0})
        out.append(Check(f"{f}: freezing the body keeps >= {RAGHU_KEPT:.1%} of the adaptation gain (Raghu Table 1); "
                         f"kept {1 - cost / gain:.1%}", 0.0, m, s, "excess <= 4 SE", bool(m <= 4 * s), kind="finding",
                         claim="raghu.freezing-barely-hurts"))
    return out


EXPERIMENT = Experiment(
    name="raghu_freezing",
    paper="Raghu et al. 2020",
    figure="Table 1",
    claim="Skipping the inner update of the body at test time barely changes a MAML-trained network's loss.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
