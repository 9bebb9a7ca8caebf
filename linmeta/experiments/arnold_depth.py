"""Arnold et al. (2021), Figure 1 (regression): MAML fails to adapt with a shallow model but not with a deep one.

Shallow (L = 1) and deep linear models (L = 2, 3, 4, equal hidden widths) are meta-trained
with second-order MAML at a small fixed inner step α on Gaussian linear-regression tasks
(``x ~ N(0, I_d)``, ``w* ~ N(0, I_d)``, K support shots, population query), several seeds on
the run axis, by Adam on fresh task batches (one :func:`linmeta.sim.training.train_with_checkpoints` run whose callback records
the checkpoints; the learning rate drops by ``lr_drop`` for the last quarter).

Theory (``derivations/shallow_floor.py``): the shallow meta-loss is a
convex quadratic in the initialisation, minimised at E[w*], so the shallow model converges to the
*floor* ``theory.shallow.shallow_floor`` — k steps of GD with the fixed α from the mean task.  A deep
model changes its own effective step (T4/T5), so it can go below that floor, towards the floor of
a shallow model whose α is tuned optimally (``theory.shallow.optimal_alpha``).  Both are exact
closed forms over K-shot support sets.

Final losses are measured on one common, fresh test set (tasks and K-shot support sets drawn from
the seed, population query, i.e. the exact expectation over query sets) shared by every model, so
differences between models and step sizes are paired.  Its standard error combines the spread over
seeds and over test tasks (:func:`linmeta.sim.stats.crossed_mean_se`).

Checks: the shallow model ends at its floor (within 4 SE) and at E[w*]; every deep model ends
clearly below the floor (4 SE), at the floor of the optimally tuned shallow step (P10, 4 SE); the deep
final loss is nearly invariant to the fixed α — "nearly" meaning its range over the swept α is below
``invariance_fraction`` (default 1/5) of how much the shallow floor moves over the same α range (paired
difference between the worst and best α, 4 SE).

The default hidden width is 2d: with width d, exploratory runs had seeds sitting for over 1000 steps on
a plateau where one input direction of the implicit preconditioner stayed at 0 (d = 4: loss ≈ 1.0, i.e.
three directions at the optimum and one not adapted).
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, init_deep_linear
from .. import to_numpy
from ..sim.evaluation import on_backend_of, post_adaptation_losses, test_set
from ..sim.stats import crossed_table_mean_se, mean_se
from ..sim.training import checkpoint_steps, train_with_checkpoints
from ..theory import shallow
from . import plotting
from .base import Experiment, Param, below, close_se

PARAMS = {
    "d": Param(int, 4, 8, low=1, high=64, help="input dimension"),
    "K": Param(int, 10, 10, low=1, high=1000, help="support shots"),
    "width": Param(int, 8, 16, low=1, high=256, help="hidden width of the deep models"),
    "depths": Param("ints", (1, 2, 3, 4), (1, 2, 3, 4), low=1, high=8, help="depths L (1 = shallow)"),
    "alpha": Param(float, 0.01, 0.01, low=1e-5, high=1.0, help="fixed inner step of the learning curves"),
    "sweep_alphas": Param("floats", (0.003, 0.01, 0.1), (0.001, 0.003, 0.01, 0.03, 0.1), low=1e-5, high=1.0,
                          help="fixed inner steps of the alpha-invariance sweep"),
    "sweep_depths": Param("ints", (2,), (2, 3, 4), low=2, high=8, help="deep models in the alpha sweep"),
    "inner_steps": Param(int, 1, 1, low=1, high=3, help="inner steps k"),
    "noise": Param(float, 0.0, 0.0, low=0.0, high=10.0, help="label noise"),
    "steps": Param(int, 1200, 3000, low=1, high=1_000_000, help="meta-training (Adam) steps"),
    "segments": Param(int, 10, 30, low=1, high=1000, help="checkpoints along training"),
    "lr": Param(float, 0.05, 0.03, low=1e-6, high=1.0, help="Adam learning rate"),
    "lr_drop": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="lr factor for the last quarter of training"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent runs (run axis)"),
    "curve_tasks": Param(int, 2048, 8192, low=16, high=1_000_000, help="common held-out tasks of the learning curves"),
    "test_tasks": Param(int, 20000, 100000, low=100, high=10_000_000,
                        help="common fresh test tasks for the final losses"),
    "invariance_fraction": Param(float, 0.2, 0.2, low=0.0, high=1.0,
                                 help="'nearly invariant': deep range over alpha < this x shallow-floor range", role="check"),
}


def family(cfg) -> GaussianRegression:
    return GaussianRegression(d=cfg["d"], noise_std=cfg["noise"])


def _init(cfg, depth, backend=None):
    widths = (cfg["width"],) * (depth - 1)
    # the same initialisation for every alpha (paired comparisons)
    return init_deep_linear(cfg["d"], widths, 1, rng=np.random.SeedSequence([cfg["seed"], depth, 1]),
                            n_runs=cfg["seeds"], backend=backend)


def _train_piece(item, backend=None):
    cfg, depth, alpha = item["cfg"], item["depth"], item["alpha"]
    fam = family(cfg)
    rule = InnerLoop(steps=cfg["inner_steps"], alpha=alpha)
    init = _init(cfg, depth, backend)
    curve_set = on_backend_of(test_set(fam, cfg["K"], cfg["curve_tasks"], np.random.SeedSequence([cfg["seed"], 7778])),
                              init)  # moved to the device once
    curve = []
    params, _ = train_with_checkpoints(
        init, fam, rule, bounds=checkpoint_steps(cfg["steps"], cfg["segments"]), lr=cfg["lr"],
        lr_drop=cfg["lr_drop"], K=cfg["K"], tasks_per_step=cfg["tasks_per_step"], seed=[cfg["seed"], depth, 2],
        on_checkpoint=lambda step, p, f: curve.append(post_adaptation_losses(p, curve_set, rule).mean(axis=1)))
    batch = test_set(fam, cfg["K"], cfg["test_tasks"], np.random.SeedSequence([cfg["seed"], 7777]))
    out = {"eval_step": checkpoint_steps(cfg["steps"], cfg["segments"]), "test_post": np.array(curve),
           "final": post_adaptation_losses(params, batch, rule)}
    if depth == 1:
        M = to_numpy(params[0])
        out["M"] = M
        out["exact_final"] = np.array([shallow.expected_meta_loss(M[s], fam, cfg["K"], alpha, cfg["inner_steps"])
                                       for s in range(M.shape[0])])
    return out


def run(cfg, ctx):
    fam, k = family(cfg), cfg["inner_steps"]
    items = [{"cfg": cfg, "depth": L, "alpha": cfg["alpha"]} for L in cfg["depths"]]
    items += [{"cfg": cfg, "depth": L, "alpha": a} for L in cfg["sweep_depths"] for a in cfg["sweep_alphas"]
              if not (L in cfg["depths"] and a == cfg["alpha"])]
    pieces = ctx.map(_train_piece, items, desc="arnold_depth")
    by = {(it["depth"], it["alpha"]): p for it, p in zip(items, pieces)}
    res = {"curves": {}, "theory": {}, "sweep": {}}
    for L in cfg["depths"]:
        p = by[(L, cfg["alpha"])]
        res["curves"][f"L{L}"] = {"step": p["eval_step"], "test_post": p["test_post"], "final": p["final"]}
    shallow_piece = by[(1, cfg["alpha"])] if 1 in cfg["depths"] else None
    if shallow_piece is not None:
        res["shallow_M"], res["shallow_exact_final"] = shallow_piece["M"], shallow_piece["exact_final"]
    a_opt, f_opt = shallow.optimal_alpha(fam, cfg["K"], k)
    res["theory"] = {"floor": shallow.shallow_floor(fam, cfg["K"], cfg["alpha"], k), "alpha_opt": a_opt,
                     "floor_opt": f_opt, "mean_task": fam.mean_task(),
                     "sweep_floor": np.array([shallow.shallow_floor(fam, cfg["K"], a, k) for a in cfg["sweep_alphas"]])}
    for L in cfg["sweep_depths"]:
        res["sweep"][f"L{L}"] = np.stack([by[(L, a)]["final"] for a in cfg["sweep_alphas"]])  # (alphas, seeds, T)
    return res


@plotting.styled
def plot(res, cfg):
    fig, (ax, bx) = plotting.figure(2, width="text", height=2.9)
    th = res["theory"]
    for i, L in enumerate(cfg["depths"]):
        c = res["curves"][f"L{L}"]
        label = "shallow ($L=1$)" if L == 1 else f"deep $L={L}$"
        plotting.band(ax, c["step"], c["test_post"], label=label, color=plotting.COLORS[i], axis=1, spread="minmax")
    ax.axhline(th["floor"], color="k", ls="--", lw=1,
               label=f"shallow floor at $\\alpha={cfg['alpha']:g}$ (closed form)")
    ax.axhline(th["floor_opt"], color="k", ls=":", lw=1,
               label=f"shallow floor at the optimal $\\alpha={th['alpha_opt']:.3g}$ (closed form)")
    ax.set_xlabel("meta-training iteration")
    ax.set_ylabel("post-adaptation meta-test loss")
    ax.set_title(f"mean and min–max over {cfg['seeds']} seeds, {cfg['curve_tasks']} held-out tasks")
    alphas = np.array(cfg["sweep_alphas"])
    grid = np.geomspace(alphas.min() / 1.5, max(alphas.max() * 1.5, th["alpha_opt"] * 1.2), 200)
    fam = family(cfg)
    bx.plot(grid, [shallow.shallow_floor(fam, cfg["K"], a, cfg["inner_steps"]) for a in grid], "k--", lw=1,
            label="shallow floor($\\alpha$) (closed form)")
    bx.axhline(th["floor_opt"], color="k", ls=":", lw=1)
    for i, L in enumerate(cfg["sweep_depths"]):
        stats = [crossed_table_mean_se(v) for v in res["sweep"][f"L{L}"]]
        plotting.errorbars(bx, alphas, [m for m, _ in stats], [s for _, s in stats], k=2,
                           color=plotting.COLORS[cfg["depths"].index(L) if L in cfg["depths"] else i + 1],
                           label=f"deep $L={L}$, final loss ($\\pm$2 SE)")
    bx.set_xscale("log")
    bx.set_xlabel("fixed inner step $\\alpha$")
    bx.set_ylabel("final post-adaptation loss")
    bx.set_title("final loss vs the inner step")
    plotting.label_panels((ax, bx))
    plotting.figlegend(fig, (ax, bx), ncol=3)
    return plotting.finish(fig, "Deep linear MAML learns its own step size and beats the shallow floor "
                                f"($d={cfg['d']}$, $K={cfg['K']}$, $k={cfg['inner_steps']}$)")


def checks(res, cfg):
    out, th = [], res["theory"]
    if 1 in cfg["depths"]:
        m, se = crossed_table_mean_se(res["curves"]["L1"]["final"])
        out.append(close_se(f"shallow final loss = closed-form floor (alpha={cfg['alpha']:g})", th["floor"], m, se,
                            claim="arnold.shallow-floor"))
        M = res["shallow_M"].reshape(res["shallow_M"].shape[0], -1)  # (seeds, out*d)
        mean, se_m = mean_se(M - th["mean_task"].reshape(1, -1))
        worst = int(np.argmax(np.abs(mean) / se_m))
        out.append(close_se(f"shallow learned init = E[w*] (worst of {mean.size} coords, over seeds)", 0.0,
                            mean[worst], se_m[worst], claim="arnold.shallow-floor"))
    for L in cfg["depths"]:
        if L == 1:
            continue
        m, se = crossed_table_mean_se(res["curves"][f"L{L}"]["final"])
        out.append(below(f"deep L={L} ends below the shallow floor", th["floor"], m, se,
                         claim="arnold.deep-escapes-floor"))
        out.append(close_se(f"deep L={L} final = floor of the optimally tuned shallow step (arnold.deep-reaches-tuned-floor)",
                            th["floor_opt"], m, se, claim="arnold.deep-reaches-tuned-floor"))
    floors = th["sweep_floor"]
    floor_move = float(floors.max() - floors.min())
    bound = cfg["invariance_fraction"] * floor_move
    for L in cfg["sweep_depths"]:
        V = res["sweep"][f"L{L}"]  # (alphas, seeds, T)
        means = V.mean(axis=(1, 2))
        hi, lo = int(np.argmax(means)), int(np.argmin(means))
        rng_mean, rng_se = crossed_table_mean_se(V[hi] - V[lo])  # paired: same inits, task streams and test set
        out.append(below(f"deep L={L} final loss range over alpha {cfg['sweep_alphas']} "
                         f"(means {', '.join(f'{x:.4f}' for x in means)}) < {cfg['invariance_fraction']:g} x "
                         f"shallow-floor range ({floor_move:.3g})", bound, rng_mean, rng_se,
                         claim="arnold.deep-reaches-tuned-floor"))
    return out


EXPERIMENT = Experiment(
    name="arnold_depth",
    paper="Arnold et al. 2021",
    figure="Fig. 1 (regression)",
    claim="MAML with a small fixed inner step is stuck at a closed-form floor with a shallow linear model; "
          "deep linear models of the same capacity go below it, nearly independently of the step.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
