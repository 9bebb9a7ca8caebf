r"""Collins, Mokhtari & Shakkottai: MAML's gain over NAL as a phase diagram, trained on the run axis.

A large sweep: over a grid of the two landscape coordinates of the isotropic easy/hard mixture —
the distance between the cluster centres in units of the hard cluster's radius, ``D/R_H``, and the
hardness ratio ``ρ_H/ρ_E`` — many seeds of a shallow model are meta-trained by MAML (one inner step
of size α with population gradients) and by NAL (no inner step), every (cell, seed, method) an
independent model on the run axis: 1,024 models in the quick preset, 10,000 in the full one.  Each run
trains full-batch by gradient descent on its own fixed sample of ``T`` tasks (exactly ``round(p_H T)``
of them hard), moved to the device once; the sweep runs on numpy or torch (CPU or CUDA), and its
pieces (chunks of cells) go through any executor.

Closed forms (:mod:`linmeta.theory.landscape`, ``derivations/landscape_fixed_tasks.py``):

* every run's trained initialisation is exactly the gradient-descent iterate on its sample,
  ``ŵ + (1 − η ā)^t (w_0 − ŵ)`` (:func:`~linmeta.theory.landscape.gd_on_isotropic_quadratics`): an
  identity, checked to a tolerance from the unit round-off of the dtype and the iteration's condition;
* the expected post-adaptation excess risk of the trained MAML and NAL initialisations, for a sample of
  ``T`` tasks (:func:`~linmeta.theory.landscape.two_cluster_fixed_tasks`), and their ratio, the gain
  achieved by training; it tends to the population gain map (:func:`~linmeta.theory.landscape.two_cluster`).

Checks compare the simulated means over seeds with these closed forms in every cell, with a
tolerance of k standard errors where k holds the family-wise error over all cells at ``family_wise``
(Bonferroni, Student's t with seeds − 1 degrees of freedom).  Findings test the paper's claim in this setting: MAML beats NAL only when the tasks
differ in hardness and the hard tasks' optima are tightly packed (``D/R_H`` large).
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop, init_deep_linear, meta_train, to_numpy

from ..sim.families import TwoClusterRuns
from ..sim.stats import mean_se, ratio_mean_se
from ..theory import landscape
from . import plotting
from .base import Experiment, Param, close_se, finding, small

PARAMS = {
    "d": Param(int, 4, 4, low=1, high=64, help="dimension"),
    "p_hard": Param(float, 0.5, 0.5, low=0.01, high=0.99, help="probability of a hard task"),
    "alpha": Param(float, 0.8, 0.8, low=1e-3, high=1.9, help="inner step size (alpha*rho_easy < 2)"),
    "rho_easy": Param(float, 1.0, 1.0, low=1e-3, high=100.0, help="easy-task input variance rho_E"),
    "radius_hard": Param(float, 1.0, 1.0, low=1e-3, high=100.0, help="R_H, spread of the hard optima"),
    "radius_easy": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="R_E, spread of the easy optima"),
    "distances": Param("floats", (0.0, 2.0, 4.0, 8.0), tuple(float(x) for x in range(10)), low=0.0, high=100.0,
                       help="grid of D/R_H, the centres' distance in hard radii"),
    "ratios": Param("floats", (0.1, 0.3, 0.6, 1.0), (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0), low=1e-3,
                    high=1.0, help="grid of rho_H/rho_E, the hardness ratio (1 = no discrepancy)"),
    "tasks": Param(int, 32, 64, low=2, high=4096, help="fixed tasks per run (exactly round(p_hard*tasks) hard)"),
    "seeds": Param(int, 32, 50, low=2, high=1000, help="independent runs (task samples) per cell and method"),
    "steps": Param(int, 300, 300, low=1, high=100000, help="gradient-descent steps"),
    "cells_per_piece": Param(int, 16, 25, low=1, high=10000, help="grid cells trained together (one piece)"),
    "family_wise": Param(float, 1e-3, 1e-3, low=1e-9, high=0.5, role="check",
                         help="family-wise error level of the per-cell checks (Bonferroni over cells)"),
}


def _cells(cfg):
    """Grid cells in order (ratio-major): list of (ratio index, distance index)."""
    return [(i, j) for i in range(len(cfg["ratios"])) for j in range(len(cfg["distances"]))]


def _landscape(cfg, ratio, dist) -> landscape.TwoCluster:
    return landscape.TwoCluster(cfg["p_hard"], ratio * cfg["rho_easy"], cfg["rho_easy"], cfg["alpha"],
                                dist * cfg["radius_hard"], cfg["radius_hard"], cfg["radius_easy"], cfg["d"])


def _learning_rates(cfg) -> dict:
    """One GD step size per method for the whole grid: 1/λ_max of its per-task curvatures (stable everywhere)."""
    rho = np.array([r * cfg["rho_easy"] for r in cfg["ratios"]] + [cfg["rho_easy"]])
    return {"maml": float(1.0 / np.max(rho * (1 - cfg["alpha"] * rho) ** 2)), "nal": float(1.0 / np.max(rho))}


CLAIM = "collins-landscape.gain-needs-hardness-and-packing"
RULES = {"maml": lambda a: InnerLoop(1, a, inner_loss="population"), "nal": lambda a: InnerLoop(0, a)}


def _train_piece(item, backend=None):
    cfg, piece, cells = item["cfg"], item["piece"], item["cells"]
    S, T = cfg["seeds"], cfg["tasks"]
    tcs = [_landscape(cfg, cfg["ratios"][i], cfg["distances"][j]) for i, j in cells]
    fam = TwoClusterRuns(tuple(tc for tc in tcs for _ in range(S)))  # runs: cell-major, then seed
    rng = np.random.SeedSequence([cfg["seed"], 17, piece])
    tasks = fam.sample_tasks(T, rng)
    batch = fam.meta_batch(tasks, None, None, rng)  # population support and query
    W0 = init_deep_linear(cfg["d"], (), 1, scale=0.5, rng=np.random.SeedSequence([cfg["seed"], 19, piece]),
                          n_runs=fam.n_runs, backend=backend)
    rho, w = tasks.input_cov[..., 0, 0], tasks.w_star[..., 0, :]  # (R, T), (R, T, d)
    rates = _learning_rates(cfg)
    out = {}
    for method, make_rule in RULES.items():
        rule = make_rule(cfg["alpha"])
        res = meta_train(W0, fam, rule, steps=cfg["steps"], lr=rates[method], optimizer="sgd", fixed_batch=batch,
                         eval_tasks=2, eval_every=cfg["steps"], seed=np.random.SeedSequence([cfg["seed"], 23, piece]),
                         check_stability=False, progress=False)
        W = to_numpy(res.params[0])[:, 0, :]  # (R, d)
        a = rho * (1 - cfg["alpha"] * rho) ** 2 if method == "maml" else rho
        path = landscape.gd_on_isotropic_quadratics(a, w, to_numpy(W0[0])[:, 0, :], rates[method], cfg["steps"])
        # the landscape's expected post-adaptation excess risk of each trained init: E_MAML + P‖W − w_MAML‖²
        gains = [landscape.two_cluster(tc) for tc in tcs]
        opt = np.stack([landscape.two_cluster_optima(tc)[0][0] for tc in tcs]).repeat(S, axis=0)
        base = np.array([g.excess_maml for g in gains]).repeat(S)
        P = np.array([g.P for g in gains]).repeat(S)
        out[method] = {
            "excess": base + P * np.sum((W - opt) ** 2, axis=-1),
            "path_error": float(np.max(np.abs(W - path)) / np.max(np.abs(path))),
            # the iteration's error amplification 1/(η ā) (worst run), for the dtype's tolerance
            "condition": float(np.max(1.0 / (rates[method] * a.mean(axis=-1)))),
        }
    return out


def run(cfg, ctx):
    cells = _cells(cfg)
    per = cfg["cells_per_piece"]
    items = [{"cfg": cfg, "piece": k, "cells": cells[s:s + per]} for k, s in enumerate(range(0, len(cells), per))]
    pieces = ctx.map(_train_piece, items, desc="collins_phase_diagram")
    nr, nd, S = len(cfg["ratios"]), len(cfg["distances"]), cfg["seeds"]
    res = {"sim": {}, "theory": {}}
    for method in RULES:
        excess = np.concatenate([p[method]["excess"] for p in pieces]).reshape(nr, nd, S)
        res["sim"][method] = {"excess": excess,
                              "path_error": max(p[method]["path_error"] for p in pieces),
                              "condition": max(p[method]["condition"] for p in pieces)}
    n_hard = int(TwoClusterRuns((_landscape(cfg, 1.0, 0.0),)).n_hard(cfg["tasks"])[0])
    finite = [[landscape.two_cluster_fixed_tasks(_landscape(cfg, r, x), n_hard, cfg["tasks"] - n_hard)
               for x in cfg["distances"]] for r in cfg["ratios"]]
    res["theory"] = {
        "gain_population": np.array([[landscape.two_cluster(_landscape(cfg, r, x)).gain for x in cfg["distances"]]
                                     for r in cfg["ratios"]]),
        "excess_maml": np.array([[f.excess_maml for f in row] for row in finite]),
        "excess_nal": np.array([[f.excess_nal for f in row] for row in finite]),
        "gain": np.array([[f.gain for f in row] for row in finite]),
    }
    res["runs"] = np.array(2 * nr * nd * S)
    return res


def _gains(res):
    """Achieved gain per cell (ratio of seed means of NAL's and MAML's excess risk) and its delta-method SE."""
    e_m, e_n = res["sim"]["maml"]["excess"], res["sim"]["nal"]["excess"]
    nr, nd, _ = e_m.shape
    g, se = np.zeros((nr, nd)), np.zeros((nr, nd))
    for i in range(nr):
        for j in range(nd):
            g[i, j], se[i, j] = ratio_mean_se(e_n[i, j], e_m[i, j])
    return g, se


@plotting.styled
def plot(res, cfg):
    fig, (ax, bx, cx) = plotting.figure(3, width="text", height=2.7)
    D, r = np.array(cfg["distances"]), np.array(cfg["ratios"])
    g, se = _gains(res)
    top = max(float(np.max(res["theory"]["gain_population"])), float(np.max(g)))
    for a, data, title in ((ax, res["theory"]["gain_population"], "closed form, population ($T\\to\\infty$)"),
                           (bx, g, f"trained: {cfg['seeds']} seeds $\\times$ $T={cfg['tasks']}$ tasks")):
        # one square per grid cell, labelled by its value (the grid need not be evenly spaced)
        im = a.imshow(data, origin="lower", aspect="auto", vmin=1.0, vmax=top, cmap="viridis")
        step_x, step_y = max(1, len(D) // 5), max(1, len(r) // 6)
        a.set_xticks(range(0, len(D), step_x), [f"{x:g}" for x in D[::step_x]])
        a.set_yticks(range(0, len(r), step_y), [f"{x:g}" for x in r[::step_y]])
        a.set_xlabel("$D/R_H$ (centre distance)")
        a.set_ylabel("$\\rho_H/\\rho_E$ (hardness ratio)")
        a.set_title(title)
        for side in ("top", "right"):
            a.spines[side].set_visible(True)
    plotting.colorbar(fig, im, [ax, bx], label="gain $E_\\mathrm{NAL}/E_\\mathrm{MAML}$")
    th = res["theory"]["gain"]
    cx.plot([1, top], [1, top], "k--", lw=1, label="$y=x$")
    plotting.errorbars(cx, th.ravel(), g.ravel(), se.ravel(), k=2, label="cells ($\\pm$2 SE)", ms=2.5,
                       color=plotting.COLORS[0])
    cx.set_xlabel(f"closed-form gain, $T={cfg['tasks']}$ tasks")
    cx.set_ylabel("achieved gain (simulation)")
    cx.set_title("each cell")
    plotting.legend(cx, "upper left")
    plotting.label_panels((ax, bx, cx))
    return plotting.finish(fig, f"MAML vs NAL gain over the task landscape: {int(res['runs'])} models meta-trained "
                                f"($d={cfg['d']}$, $\\alpha={cfg['alpha']:g}$, $p_H={cfg['p_hard']:g}$)")


def exact_tolerance(dtype: str, terms: int, condition: float) -> float:
    """Relative tolerance of an iterated computation from the unit round-off ``u`` of ``dtype``.

    ``γ_n = n u / (1 − n u)`` bounds the relative error of one step's sums of ``n`` terms; a contracting
    iteration amplifies it by at most ``condition`` (``1/(η ā)`` for gradient descent).  In float64 the
    house tolerance ``1e-10`` is used where it is looser.
    """
    u = {"float64": 2.0**-53, "float32": 2.0**-24}[dtype]
    gamma = terms * u / (1 - terms * u)
    bound = gamma * condition
    return max(bound, 1e-10) if dtype == "float64" else bound


def step_terms(cfg) -> int:
    """The length of the longest per-run sum in one meta-gradient step (the ``n`` of :func:`exact_tolerance`)."""
    return cfg["tasks"] + 4 * cfg["d"] + 8


def checks(res, cfg):
    out = []
    dtype = str(res.get("run_backend", {}).get("dtype", "float64"))
    terms = step_terms(cfg)
    for method, name in (("maml", "MAML"), ("nal", "NAL")):
        s = res["sim"][method]
        tol = exact_tolerance(dtype, terms, s["condition"])
        out.append(small(f"{name}: every trained init equals the closed-form GD iterate on its own tasks "
                         f"(max rel err over runs, {dtype})", s["path_error"], tol, claim="collins-landscape.finite-task-gain"))
    cells = len(cfg["ratios"]) * len(cfg["distances"])
    # k from the family-wise level over the cells (Bonferroni), Student's t with seeds − 1 degrees of freedom
    # because each cell's SE is itself estimated from its seeds
    from scipy.stats import t as student_t  # imported on use: scipy.stats is slow to import

    k = float(student_t.isf(cfg["family_wise"] / (2 * cells), cfg["seeds"] - 1))
    for method, name in (("maml", "MAML"), ("nal", "NAL")):
        m, se = mean_se(res["sim"][method]["excess"], axis=-1)
        z = np.abs(m - res["theory"][f"excess_{method}"]) / se
        i, j = np.unravel_index(int(np.argmax(z)), z.shape)
        out.append(close_se(f"{name}: excess risk of the trained init = closed form for T={cfg['tasks']} tasks "
                            f"(worst of {cells} cells: rho ratio {cfg['ratios'][i]:g}, D/R_H {cfg['distances'][j]:g})",
                            res["theory"][f"excess_{method}"][i, j], m[i, j], se[i, j], k=k,
                            claim="collins-landscape.finite-task-gain"))
    g, se = _gains(res)
    th = res["theory"]["gain"]
    z = np.abs(g - th) / np.where(se > 0, se, np.inf)
    i, j = np.unravel_index(int(np.argmax(z)), z.shape)
    out.append(close_se(f"achieved gain = closed-form gain for T={cfg['tasks']} tasks (worst of {cells} cells: "
                        f"rho ratio {cfg['ratios'][i]:g}, D/R_H {cfg['distances'][j]:g})", th[i, j], g[i, j],
                        se[i, j], k=k, claim="collins-landscape.finite-task-gain"))
    # the paper's claim, cell by cell
    ratios, dists = np.array(cfg["ratios"]), np.array(cfg["distances"])
    if np.any(ratios == 1.0):
        row = int(np.flatnonzero(ratios == 1.0)[0])
        dev = float(np.max(np.abs(g[row] - 1.0)))
        out.append(finding("no hardness discrepancy (rho_H = rho_E): MAML gains nothing over NAL "
                           "(max |gain - 1| over D)", dev < 1e-6, dev, 0.0, "< 1e-6", claim=CLAIM))
    if len(dists) > 1 and np.any(ratios < 1.0):
        jmax, j0 = int(np.argmax(dists)), int(np.argmin(dists))
        rows = np.flatnonzero(ratios < 1.0)
        diff = g[rows, jmax] - g[rows, j0]
        dse = np.hypot(se[rows, jmax], se[rows, j0])
        worst = int(np.argmin(diff / dse))
        out.append(finding(f"with a hardness discrepancy, the gain grows as the hard tasks get tightly packed: "
                           f"gain(D/R_H={dists[jmax]:g}) - gain(D/R_H={dists[j0]:g}) > 4 SE for every rho ratio < 1 "
                           f"(weakest: {ratios[rows[worst]]:g})", bool(np.all(diff > 4 * dse)), float(diff[worst]),
                           0.0, "diff - 4 SE > 0", claim=CLAIM))
        best = np.unravel_index(int(np.argmax(g)), g.shape)
        out.append(finding(f"the largest gain ({g[best]:.3g}) sits at the largest D/R_H with a hardness discrepancy",
                           bool(best[1] == jmax and ratios[best[0]] < 1.0), float(dists[best[1]]), float(dists[jmax]),
                           "argmax", claim=CLAIM))
    return out


EXPERIMENT = Experiment(
    name="collins_phase_diagram",
    paper="Collins, Mokhtari & Shakkottai 2022",
    figure="gain map over the task landscape (large sweep)",
    claim="Trained on the run axis over a (D/R_H, rho_H/rho_E) grid, MAML's gain over NAL matches its closed form "
          "cell by cell: it is 1 without a hardness discrepancy and grows as the hard tasks get tightly packed.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
