"""Arnold et al. (2021), the hero figure: meta-loss surface and MAML trajectories of ``ŷ = w₂w₁x`` vs ``ŷ = wx``.

Smallest case of the depth result (project page: "Loss surface and trajectories of MAML-trained deep
linear models"; its exact setup was not retrievable).  Tasks: ``x ~ N(0, ρ)``,
``w* ~ N(0, s²)``, noiseless; the inner loop is one step of size α on the population task loss, the
meta-loss the expected post-adaptation population loss — a closed form in (w₁, w₂)
(:func:`linmeta.theory.depth.scalar_deep_meta_loss`, ``derivations/scalar_surface.py``).

* Shallow ``ŷ = wx``: the step is α whatever ``w`` is, so the best it can do is
  ``½ρ(1 − αρ)²s²`` at ``w = 0``.
* Deep ``ŷ = w₂w₁x``: the effective step on ``m = w₁w₂`` is ``α(w₁² + w₂²)``.  The meta-loss is 0 exactly
  at ``(0, ±1/√(αρ))`` and ``(±1/√(αρ), 0)``, where ``m = 0`` and ``αρ(w₁² + w₂²) = 1``: one inner step
  then lands on every task's solution curve ``w₁'w₂' = w*``.  Since every task's loss is 0 there, the
  stochastic meta-gradient vanishes too, so MAML's SGD converges to these points exactly.

MAML meta-training: plain SGD on the engine's exact meta-gradient (:func:`linmeta.meta_value_and_grad`)
on fresh task batches, every iterate recorded; several initialisations on the run axis.

Checks: the closed-form surface equals the engine's meta-loss (expectation over ``w*`` by Gauss–Hermite
quadrature, exact for this degree-4 polynomial); every deep trajectory decreases the meta-loss to its
exact minimum 0, ends at one of the four predicted minimisers, with effective step ``αρ(w₁²+w₂²) = 1``,
and its one-step adaptation lands on each task's solution; the shallow model ends at ``w = E[w*] = 0``
(4 SE over runs) and its inner step still moves only ``αρ`` of the way to each task.
"""
from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .. import GaussianRegression, InnerLoop, TaskBatch, meta_value_and_grad
from ..meta import adapt, adapted_map
from .. import as_generator
from ..theory import depth
from . import plotting
from .base import Experiment, Param, close_se, holds, mean_and_se, small

PARAMS = {
    "alpha": Param(float, 0.25, 0.25, low=1e-3, high=1.0, help="inner step size"),
    "rho": Param(float, 1.0, 1.0, low=1e-2, high=10.0, help="input variance"),
    "s": Param(float, 1.0, 1.0, low=1e-2, high=10.0, help="task standard deviation (w* ~ N(0, s^2))"),
    "lr": Param(float, 0.5, 0.5, low=1e-4, high=10.0, help="outer SGD learning rate"),
    "steps": Param(int, 600, 1500, low=1, high=1_000_000, help="outer SGD steps"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "inits": Param(int, 8, 12, low=1, high=64, help="deep initialisations (alternating inner/outer ring)"),
    "ring": Param("floats", (0.3, 1.2), (0.25, 1.25), low=0.01, high=1.4,
                  help="radii of the init rings, in units of 1/sqrt(alpha rho)"),
    "shallow_runs": Param(int, 8, 16, low=2, high=256, help="shallow runs (inits spread over [-1.5 s, 1.5 s])"),
    "grid": Param(int, 81, 201, low=11, high=1001, help="surface grid points per axis"),
    "arrow_tasks": Param(int, 5, 5, low=1, high=20, help="tasks whose adaptation arrows are drawn"),
}


def family(cfg) -> GaussianRegression:
    return GaussianRegression(d=1, mean=[[0.0]], cov=cfg["s"] ** 2, input_cov=[[cfg["rho"]]])


def rule(cfg) -> InnerLoop:
    return InnerLoop(steps=1, alpha=cfg["alpha"], inner_loss="population")


def r_star(cfg) -> float:
    return 1.0 / np.sqrt(cfg["alpha"] * cfg["rho"])


def deep_inits(cfg) -> np.ndarray:
    """``(inits, 2)`` starting points on two rings, at angles away from the diagonals (where w₁ = ±w₂ is invariant)."""
    n = cfg["inits"]
    ang = 2 * np.pi * (np.arange(n) + 0.3) / n
    rad = np.array(cfg["ring"])[np.arange(n) % len(cfg["ring"])] * r_star(cfg)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def sgd_trajectories(params, cfg, seed_tag: int) -> np.ndarray:
    """Plain SGD on MAML's exact meta-gradient; returns every iterate, ``(steps + 1, runs, n_layers)``."""
    fam, r = family(cfg), rule(cfg)
    rng = as_generator(np.random.SeedSequence([cfg["seed"], seed_tag]))
    runs = params[0].shape[0]
    path = [np.concatenate([W.reshape(runs, 1) for W in params], axis=1)]
    for step in range(cfg["steps"]):
        batch = fam.meta_batch(fam.sample_tasks(cfg["tasks_per_step"], rng, n_runs=runs), None, None, rng)
        g = meta_value_and_grad(params, batch.support, batch.query, r).params
        params = tuple(W - cfg["lr"] * gW for W, gW in zip(params, g))
        if not all(np.all(np.isfinite(W)) and np.max(np.abs(W)) < 1e6 for W in params):
            raise ValueError(f"outer SGD diverged at step {step + 1}: lower lr (now {cfg['lr']}) or the init ring")
        path.append(np.concatenate([W.reshape(runs, 1) for W in params], axis=1))
    return np.array(path)


def quadrature_meta_loss(params, cfg, nodes: int = 6) -> np.ndarray:
    """The engine's meta-loss averaged over ``w* ~ N(0, s²)`` by Gauss–Hermite quadrature, per run.

    The post-adaptation loss is a polynomial of degree 4 in ``w*``; ``nodes`` ≥ 3 integrates it exactly.
    """
    z, wq = hermegauss(nodes)
    wq = wq / np.sqrt(2 * np.pi)
    T = nodes
    tasks = TaskBatch(w_star=(cfg["s"] * z).reshape(T, 1, 1), input_cov=np.full((T, 1, 1), cfg["rho"]),
                      noise_std=np.zeros(T))
    pop = tasks.population()
    per_task = np.asarray(pop.value(adapted_map(params, pop, rule(cfg))))  # (runs, T)
    return per_task @ wq


def adaptation_arrows(point, cfg, w_stars) -> np.ndarray:
    """Engine's one-step adaptation of the layers at ``point`` to each task: ``(tasks, n_layers)``."""
    T = len(w_stars)
    tasks = TaskBatch(w_star=np.reshape(w_stars, (T, 1, 1)), input_cov=np.full((T, 1, 1), cfg["rho"]),
                      noise_std=np.zeros(T))
    params = tuple(np.full((1, 1), v) for v in point)
    adapted = adapt(params, tasks.population(), rule(cfg))
    return np.stack([np.broadcast_to(W, (T, 1, 1)).reshape(T) for W in adapted], axis=1)


def run(cfg, ctx):
    a, rho, s = cfg["alpha"], cfg["rho"], cfg["s"]
    R = 1.6 * r_star(cfg)
    g = np.linspace(-R, R, cfg["grid"])
    W1, W2 = np.meshgrid(g, g, indexing="ij")
    res = {"grid": g, "surface": depth.scalar_deep_meta_loss(W1, W2, a, rho, 0.0, s),
           "shallow_curve": depth.scalar_shallow_meta_loss(g, a, rho, 0.0, s),
           "minima": depth.scalar_deep_minima(a, rho)}
    # engine vs closed form on a coarse sub-grid of the surface and at the minimisers
    sub = np.linspace(-R, R, 9)
    P1, P2 = np.meshgrid(sub, sub, indexing="ij")
    pts = np.concatenate([np.stack([P1.ravel(), P2.ravel()], 1), res["minima"]])
    res["check_points"] = pts
    res["check_engine"] = quadrature_meta_loss((pts[:, :1, None], pts[:, 1:, None]), cfg)
    res["check_closed"] = depth.scalar_deep_meta_loss(pts[:, 0], pts[:, 1], a, rho, 0.0, s)
    ws = np.linspace(-1.5 * s, 1.5 * s, cfg["shallow_runs"])
    res["shallow_check_engine"] = quadrature_meta_loss((ws.reshape(-1, 1, 1),), cfg)
    res["shallow_check_closed"] = depth.scalar_shallow_meta_loss(ws, a, rho, 0.0, s)
    # MAML trajectories
    X0 = deep_inits(cfg)
    res["deep_path"] = sgd_trajectories((X0[:, :1, None].copy(), X0[:, 1:, None].copy()), cfg, 1)
    res["shallow_path"] = sgd_trajectories((ws.reshape(-1, 1, 1).copy(),), cfg, 2)
    res["deep_loss"] = depth.scalar_deep_meta_loss(res["deep_path"][..., 0], res["deep_path"][..., 1], a, rho, 0.0, s)
    res["shallow_loss"] = depth.scalar_shallow_meta_loss(res["shallow_path"][..., 0], a, rho, 0.0, s)
    # inner-loop adaptation to a few tasks, at the first trajectory's start and end
    w_stars = s * np.linspace(-1.5, 1.5, cfg["arrow_tasks"])
    res["arrow_tasks"] = w_stars
    res["arrows_deep_start"] = adaptation_arrows(res["deep_path"][0, 0], cfg, w_stars)
    res["arrows_deep_end"] = adaptation_arrows(res["deep_path"][-1, 0], cfg, w_stars)
    res["arrows_shallow_end"] = adaptation_arrows(res["shallow_path"][-1, 0], cfg, w_stars)
    res["floor_shallow"] = float(depth.scalar_shallow_meta_loss(0.0, a, rho, 0.0, s))
    return res


@plotting.styled
def plot(res, cfg):
    # Print-size version of the hero figure: few filled levels with integer colourbar ticks, one set of
    # inner-step arrows (after meta-training, with those tasks' solution curves), and every explanation in
    # the shared legend rather than in the panels.
    fig, (ax, bx, cx) = plotting.figure(3, width="text", height=3.0)
    C = plotting.COLORS
    deep_c, shallow_c = C[1], C[0]
    g, F = res["grid"], res["surface"]
    R = g[-1]
    top = float(np.ceil(np.log10(F.max())))
    cs = ax.contourf(g, g, np.log10(F.T + 1e-4), levels=np.linspace(-4, top, 9), cmap="viridis")
    cb = plotting.colorbar(fig, cs, ax, label="$\\log_{10}$ meta-loss (closed form)")
    cb.set_ticks(np.arange(-4, top + 0.5, 2))
    t = np.linspace(-R, R, 400)
    t = t[np.abs(t) > 1e-3]
    for w in res["arrow_tasks"]:  # solution curves w1 w2 = w* of the arrow tasks
        with np.errstate(divide="ignore"):
            y = w / t
        y[np.abs(y) > R] = np.nan
        ax.plot(t, y, color="w", lw=0.5, ls="--", alpha=0.8)
    for i in range(res["deep_path"].shape[1]):
        p = res["deep_path"][:, i]
        ax.plot(p[:, 0], p[:, 1], color=deep_c, lw=1.0, label="deep: MAML (SGD) paths" if i == 0 else None)
        ax.plot(*p[0], "o", color=deep_c, ms=3, label="initialisations" if i == 0 else None)
    ax.plot(res["minima"][:, 0], res["minima"][:, 1], "*", color="w", ms=8, mec="k", mew=0.5, ls="",
            label="minima: $m=0$, $\\alpha\\rho(w_1^2+w_2^2)=1$")
    start = res["deep_path"][-1, 0]
    for tgt in res["arrows_deep_end"]:
        ax.annotate("", xy=tgt, xytext=start, arrowprops=dict(arrowstyle="->", color="w", lw=1.0))
    ax.set(xlim=(-R, R), ylim=(-R, R), xlabel="$w_1$", ylabel="$w_2$")
    ax.set_aspect("equal")
    ax.set_title("deep $\\hat y = w_2 w_1 x$")
    # shallow
    bx.plot(g, res["shallow_curve"], "k-", lw=1.2, label="shallow meta-loss (closed form)")
    bx.axhline(res["floor_shallow"], color="k", ls=":", lw=1, label="shallow floor $\\frac{1}{2}\\rho(1-\\alpha\\rho)^2s^2$")
    for i in range(res["shallow_path"].shape[1]):
        p = res["shallow_path"][:, i, 0]
        bx.plot(p[0], res["shallow_loss"][0, i], "o", color="k", ms=3)
        bx.plot(p[-1], res["shallow_loss"][-1, i], "s", color=shallow_c, ms=4,
                label="shallow: trained $w$ (from the dots)" if i == 0 else None)
    step = 0.1 * res["shallow_curve"].max()
    start = res["shallow_path"][-1, 0, 0]
    for j, (w, tgt) in enumerate(zip(res["arrow_tasks"], res["arrows_shallow_end"][:, 0])):
        y = -step * (j + 1)
        bx.annotate("", xy=(tgt, y), xytext=(start, y), arrowprops=dict(arrowstyle="->", color=shallow_c, lw=1.0))
        bx.plot(w, y, "x", color=shallow_c, ms=4, label="shallow: inner step to a task (arrow) vs its $w^*$"
                if j == 0 else None)
    bx.axhline(0, color=plotting.GREY, lw=0.5)
    bx.set(xlabel="$w$", ylabel="meta-loss")
    bx.set_title("shallow $\\hat y = wx$")
    steps = np.arange(res["deep_loss"].shape[0])
    for i in range(res["deep_loss"].shape[1]):
        cx.plot(steps + 1, res["deep_loss"][:, i], color=deep_c, lw=0.8, label="deep" if i == 0 else None)
    for i in range(res["shallow_loss"].shape[1]):
        cx.plot(steps + 1, res["shallow_loss"][:, i], color=shallow_c, lw=0.8, label="shallow" if i == 0 else None)
    cx.axhline(res["floor_shallow"], color="k", ls=":", lw=1)
    cx.set(xscale="log", yscale="log", xlabel="MAML (SGD) iteration + 1", ylabel="meta-loss (closed form)")
    cx.set_title("along each path")
    plotting.legend(cx, "lower left")
    plotting.label_panels((ax, bx, cx))
    h = plotting.handle
    extra = [h("inner step to 5 tasks after training (white)", marker="$\\rightarrow$", ms=8, ls=""),
             h("their solutions $w_1w_2=w^*$ (white, dashed)", color=plotting.GREY, ls="--", lw=0.8)]
    handles = [a for a in ax.get_legend_handles_labels()[0]] + extra + bx.get_legend_handles_labels()[0]
    plotting.figlegend(fig, handles=handles, labels=[a.get_label() for a in handles], ncol=3)
    return plotting.finish(fig, "Same capacity, different adaptation: the deep scalar model meta-learns its step "
                                f"($\\alpha={cfg['alpha']:g}$, $\\rho={cfg['rho']:g}$, $w^*\\sim N(0,{cfg['s']:g}^2)$)")


def checks(res, cfg):
    out = []
    eng, cf = res["check_engine"], res["check_closed"]
    err = np.max(np.abs(eng - cf) / np.maximum(np.abs(cf), 1e-300 + 1e-12 * np.max(np.abs(cf))))
    out.append(small("deep surface: closed form = engine meta-loss (Gauss-Hermite), max rel err", err, 1e-10,
                     claim="arnold.scalar-surface"))
    err = np.max(np.abs(res["shallow_check_engine"] - res["shallow_check_closed"]) / res["shallow_check_closed"])
    out.append(small("shallow curve: closed form = engine meta-loss (Gauss-Hermite), max rel err", err, 1e-10,
                     claim="arnold.scalar-surface"))
    L = res["deep_loss"]
    out.append(holds("every deep trajectory decreases the meta-loss (final < initial)", bool(np.all(L[-1] < L[0])),
                     value=float(np.max(L[-1] / L[0])), reference=1.0, tolerance="max final/initial < 1", claim="arnold.scalar-adapts-in-one-step"))
    # the exact minimum is 0 and SGD's gradient noise vanishes there (interpolation): linear convergence
    # convergence tolerances: the exact minimum is 0 and SGD's gradient noise vanishes there (interpolation),
    # so convergence is linear; "converged" = loss down by 1e-6 and parameters within 1e-3 (relative)
    out.append(small("deep trajectories reach the exact minimum 0 (max final/initial meta-loss)",
                     float(np.max(L[-1] / L[0])), 1e-6, claim="arnold.scalar-adapts-in-one-step"))
    end = res["deep_path"][-1]  # (runs, 2)
    dist = np.min(np.linalg.norm(end[:, None, :] - res["minima"][None], axis=2), axis=1)
    out.append(small("deep trajectories end at a predicted minimiser (max distance / r*)",
                     float(np.max(dist) * np.sqrt(cfg["alpha"] * cfg["rho"])), 1e-3, claim="arnold.scalar-adapts-in-one-step"))
    eff = depth.scalar_effective_step(end[:, 0], end[:, 1], cfg["alpha"]) * cfg["rho"]
    out.append(small("deep effective step alpha*rho*(w1^2+w2^2) = 1 at the end (max |diff|)",
                     float(np.max(np.abs(eff - 1.0))), 1e-3, claim="arnold.scalar-adapts-in-one-step"))
    landed = res["arrows_deep_end"].prod(axis=1)
    out.append(small("deep: one inner step from the learned init lands on w* (max |w1'w2' - w*| / s)",
                     float(np.max(np.abs(landed - res["arrow_tasks"])) / cfg["s"]), 1e-3, claim="arnold.scalar-adapts-in-one-step"))
    ws_end = res["shallow_path"][-1, :, 0]
    m, se = mean_and_se(ws_end)
    out.append(close_se("shallow ends at E[w*] = 0 (mean over runs)", 0.0, m, se, claim="arnold.shallow-floor"))
    w0 = res["shallow_path"][-1, 0, 0]
    expect = w0 - cfg["alpha"] * cfg["rho"] * (w0 - res["arrow_tasks"])  # its step is alpha, whatever w is
    err = np.max(np.abs(expect - res["arrows_shallow_end"][:, 0])) / np.max(np.abs(expect))
    out.append(small("shallow: one inner step moves only alpha*rho of the way to w* (engine vs closed form)", err,
                     1e-10, claim="arnold.scalar-adapts-in-one-step"))
    out.append(holds("deep final meta-loss < shallow floor 1/2 rho (1 - alpha rho)^2 s^2",
                     bool(res["floor_shallow"] > np.max(res["deep_loss"][-1])), value=float(np.max(res["deep_loss"][-1])),
                     reference=res["floor_shallow"], tolerance="deep final < shallow floor",
                     claim="arnold.deep-escapes-floor"))
    return out


EXPERIMENT = Experiment(
    name="arnold_surface",
    paper="Arnold et al. 2021",
    figure="hero figure (project page)",
    claim="With the same capacity, ŷ = w₂w₁x meta-learns an effective step α(w₁²+w₂²) = 1/ρ and adapts in one step, "
          "while ŷ = wx stays at its closed-form floor.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
