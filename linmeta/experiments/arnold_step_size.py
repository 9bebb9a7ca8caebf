"""Arnold et al. (2021), P11: a deep linear network meta-learns its own inner step size.

With all layers adapting, one inner step of a deep linear network moves the end-to-end map by
``−α Σ_l (S_l S_lᵀ) G (P_lᵀ P_l) + O(α²)`` (:mod:`linmeta.theory.precondition`, ``derivations/implicit_preconditioner.py``):
an implicit preconditioner ``P`` on ``vec G``.  The effective step of the deep model is ``α·P``;
a shallow model's is ``α`` and cannot change.  Prediction (P11, [D]): starting from a small fixed α,
meta-training grows the effective step towards the step that minimises the shallow one-step
meta-loss, ``α* = theory.shallow.optimal_alpha`` (exact over K-shot support sets;
``derivations/shallow_floor.py``: ``α* = K/(K + d + 1)`` for ``x, w* ~ N(0, I)`` without noise),
and the upper-layer norm ``‖W_L⋯W_2‖²`` (the bottom layer's implicit step, T2) grows with it.

The models are trained as in :mod:`arnold_depth` (Adam, fresh tasks, checkpoints between
:func:`linmeta.train.meta_train` calls).  At every checkpoint the full spectrum of ``α·P``
(``theory.precondition.implicit_matrix``) is recorded per seed; its mean eigenvalue is the isotropic
effective step, its largest one is ``theory.precondition.implicit_step_size`` (the dotted lines).  For isotropic tasks
the optimal one-step preconditioner is ``α* I``, so every eigenvalue should approach ``α*``.

Checks (per depth): the final isotropic effective step equals ``α*`` within 4 SE over seeds; it
started below ``α*`` and grew (final − initial, 4 SE over seeds); the upper-layer norm grew (P11's
"upper-layer norms are therefore expected to increase").  The last one need not hold: for a scalar
output ``P = ‖W_L⋯W_2‖² I + Σ_{l≥2} ‖S_l‖² P_lᵀP_l``, and the isotropic step can equally be carried
by the Gram matrices of the lower layers (the update of the upper layers) while ``W_L⋯W_2`` shrinks;
the share carried by the upper layers, ``α‖W_L⋯W_2‖² / mean eig(α·P)``, is reported per seed.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, init_deep_linear
from ..theory import precondition, shallow
from . import plotting
from .. import to_numpy
from ..sim.evaluation import on_backend_of, post_adaptation_losses, test_set
from ..sim.stats import mean_se
from ..sim.training import train_with_checkpoints
from .base import Experiment, Param, above, as_finding, below, close_se

PARAMS = {
    "d": Param(int, 4, 8, low=1, high=32, help="input dimension"),
    "K": Param(int, 10, 10, low=1, high=1000, help="support shots"),
    "width": Param(int, 8, 16, low=1, high=128, help="hidden width"),
    "depths": Param("ints", (2, 3), (2, 3, 4), low=2, high=8, help="depths L"),
    "alpha": Param(float, 0.01, 0.01, low=1e-5, high=1.0, help="fixed inner step"),
    "inner_steps": Param(int, 1, 1, low=1, high=3, help="inner steps k"),
    "noise": Param(float, 0.0, 0.0, low=0.0, high=10.0, help="label noise"),
    "steps": Param(int, 1200, 3000, low=2, high=1_000_000, help="meta-training (Adam) steps"),
    "checkpoints": Param(int, 12, 30, low=2, high=200, help="checkpoints, geometrically spaced in the step"),
    "lr": Param(float, 0.05, 0.03, low=1e-6, high=1.0, help="Adam learning rate"),
    "lr_drop": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="lr factor for the last quarter of training"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent runs"),
    "curve_tasks": Param(int, 1024, 8192, low=16, high=1_000_000, help="held-out tasks for the loss curve"),
}


def family(cfg) -> GaussianRegression:
    return GaussianRegression(d=cfg["d"], noise_std=cfg["noise"])


def _init(cfg, depth, backend=None):
    """The initialisation of ``arnold_depth`` (same seeds), so the two experiments start from the same nets."""
    widths = (cfg["width"],) * (depth - 1)
    return init_deep_linear(cfg["d"], widths, 1, rng=np.random.SeedSequence([cfg["seed"], depth, 1]),
                            n_runs=cfg["seeds"], backend=backend)


def checkpoints(steps: int, n: int) -> np.ndarray:
    """``0`` and about ``n`` geometrically spaced steps up to ``steps`` (dense early, where the step grows)."""
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, n)).astype(int)]))


def _spectrum(params, alpha):
    """Eigenvalues of ``α·P`` per run, ``(runs, out·d)``, and the upper-layer norm ``‖W_L⋯W_2‖²``, ``(runs,)``."""
    runs = params[0].shape[0]
    eig, upper = [], []
    for r in range(runs):
        p = tuple(W[r] for W in params)
        eig.append(alpha * np.linalg.eigvalsh(precondition.implicit_matrix(p)))
        upper.append(np.trace(precondition.bottom_only_factor(p)))
    return np.array(eig), np.array(upper)


def _piece(item, backend=None):
    cfg, depth = item["cfg"], item["depth"]
    fam = family(cfg)
    rule = InnerLoop(steps=cfg["inner_steps"], alpha=cfg["alpha"])
    init = _init(cfg, depth, backend)
    curve_set = on_backend_of(test_set(fam, cfg["K"], cfg["curve_tasks"], np.random.SeedSequence([cfg["seed"], 7779])),
                              init)
    rec = {"eig": [], "upper": [], "loss": []}

    def record(step, p, f):
        eig, upper = _spectrum(tuple(to_numpy(W) for W in p), cfg["alpha"])
        rec["eig"].append(eig)
        rec["upper"].append(upper)
        rec["loss"].append(post_adaptation_losses(p, curve_set, rule).mean(axis=1))

    bounds = checkpoints(cfg["steps"], cfg["checkpoints"])
    train_with_checkpoints(init, fam, rule, bounds=bounds, lr=cfg["lr"], lr_drop=cfg["lr_drop"],
                           K=cfg["K"], tasks_per_step=cfg["tasks_per_step"], seed=[cfg["seed"], depth, 3],
                           on_checkpoint=record)
    out = {k: np.array(v) for k, v in rec.items()}  # eig (n_ckpt, runs, d), others (n_ckpt, runs)
    out["step"] = bounds
    return out


def run(cfg, ctx):
    pieces = ctx.map(_piece, [{"cfg": cfg, "depth": L} for L in cfg["depths"]], desc="arnold_step_size")
    fam = family(cfg)
    a_opt, f_opt = shallow.optimal_alpha(fam, cfg["K"], cfg["inner_steps"])
    res = {f"L{L}": p for L, p in zip(cfg["depths"], pieces)}
    res["theory"] = {"alpha_opt": a_opt, "floor_opt": f_opt,
                     "floor": shallow.shallow_floor(fam, cfg["K"], cfg["alpha"], cfg["inner_steps"])}
    return res


@plotting.styled
def plot(res, cfg):
    fig, (ax, bx, cx) = plotting.figure(3, width="text", height=3.0)
    th = res["theory"]
    fam = family(cfg)
    for i, L in enumerate(cfg["depths"]):
        r, c = res[f"L{L}"], plotting.COLORS[i]
        x = np.maximum(r["step"], 0.5)
        plotting.band(ax, x, r["eig"].mean(axis=2), axis=1, color=c, label=f"$L={L}$")
        ax.plot(x, r["eig"].min(axis=2).mean(axis=1), ":", color=c, lw=1)
        ax.plot(x, r["eig"].max(axis=2).mean(axis=1), ":", color=c, lw=1)
        for s in range(r["upper"].shape[1]):
            bx.plot(x, cfg["alpha"] * r["upper"][:, s], "-", color=c, lw=0.8, alpha=0.7)
        plotting.band(cx, x, r["loss"], axis=1, color=c)
        pred = [shallow.shallow_floor(fam, cfg["K"], a, cfg["inner_steps"]) for a in r["eig"].mean(axis=(1, 2))]
        cx.plot(x, pred, "--", color=c, lw=1)
    for a in (ax, bx):
        a.axhline(th["alpha_opt"], color="k", ls="--", lw=1)
    ax.axhline(cfg["alpha"], color=plotting.GREY, ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("effective inner step")
    ax.set_title("eigenvalues of $\\alpha P$")
    bx.set_yscale("log")
    bx.set_ylabel("$\\alpha\\|W_L\\cdots W_2\\|^2$")
    bx.set_title("bottom layer's step, per seed")
    cx.axhline(th["floor"], color=plotting.GREY, ls=":", lw=1)
    cx.axhline(th["floor_opt"], color="k", ls="--", lw=1)
    cx.set_ylabel("post-adaptation meta-test loss")
    cx.set_title("loss vs closed form")
    for a in (ax, bx, cx):
        a.set_xscale("log")
        a.set_xlabel("meta-training iteration (+0.5)")
    plotting.label_panels((ax, bx, cx))
    h = plotting.handle
    handles = ax.get_legend_handles_labels()[0] + [
        h("min / max eigenvalue (a)", color=plotting.GREY, ls=":", lw=1),
        h(f"optimal shallow step $\\alpha^*={th['alpha_opt']:.3g}$ (a, b); shallow floor at $\\alpha^*$ (c)", ls="--", lw=1),
        h(f"fixed $\\alpha={cfg['alpha']:g}$ (a); shallow floor at fixed $\\alpha$ (c)", color=plotting.GREY, ls=":",
          lw=1),
        h("shallow closed form at the learned step (c)", color=plotting.COLORS[0], ls="--", lw=1)]
    plotting.figlegend(fig, handles=handles)
    return plotting.finish(fig, "The implicit preconditioner of deep linear MAML grows to the optimal one-step size "
                                f"($d={cfg['d']}$, $K={cfg['K']}$, $\\alpha={cfg['alpha']:g}$; bands $\\pm$1 SE over {cfg['seeds']} seeds)")


def checks(res, cfg):
    out, a_opt = [], res["theory"]["alpha_opt"]
    for L in cfg["depths"]:
        r = res[f"L{L}"]
        iso = r["eig"].mean(axis=2)  # (n_ckpt, runs)
        m, se = mean_se(iso[-1])
        out.append(close_se(f"L={L}: final effective step (mean eigenvalue of alpha*P) = optimal shallow step",
                            a_opt, m, se, claim="arnold.effective-step-grows"))
        out.append(below(f"L={L}: initial effective step is below the optimal one", a_opt, iso[0].mean(),
                         mean_se(iso[0])[1], claim="arnold.effective-step-grows"))
        g, gse = mean_se(iso[-1] - iso[0])
        out.append(above(f"L={L}: effective step grew during meta-training (final - initial)", 0.0, g, gse, claim="arnold.effective-step-grows"))
        u, use = mean_se(np.log(r["upper"][-1] / r["upper"][0]))
        share = cfg["alpha"] * r["upper"][-1] / iso[-1]
        # a derived prediction (arnold.upper-norms-grow), not paper text: reported as a claim, not a check
        out.append(as_finding(above(f"L={L}: upper-layer norm ||W_L..W_2||^2 grew (log ratio final/initial; share "
                                    f"of the final step it carries, per seed: {', '.join(f'{x:.2f}' for x in share)})",
                                    0.0, u, use), claim="arnold.upper-norms-grow"))
    return out


EXPERIMENT = Experiment(
    name="arnold_step_size",
    paper="Arnold et al. 2021",
    figure="§4 (the learned step size of the implicit meta-optimizer)",
    claim="During MAML meta-training the implicit preconditioner of a deep linear net grows from a small fixed "
          "step to the step that minimises the one-step meta-loss, which a shallow model cannot do.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
