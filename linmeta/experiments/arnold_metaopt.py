"""Arnold et al. (2021), §5: explicit meta-optimizers meta-learned jointly with the initialisation.

Scalar-output regression tasks with an anisotropic input covariance Σ (eigenvalues ``spectrum^i`` in a
random basis, so a diagonal preconditioner is not enough), ``w* ~ N(μ, I)``, K-shot support sets, one
inner step at a fixed small α, population query.  A shallow model is meta-trained with

* MAML (``U = g``), Meta-SGD (``U = λ ⊙ g``), KFO (``U = L̃ g R̃``, PSD factors ``LᵀL``, ``RᵀR``), KFO without
  the PSD constraint, and Meta-Curvature (``U = M_out g M_in``), all from their identity initialisation and
  learned jointly with the initialisation (``meta_train(..., precond=..., learn_phi=True)``);
* and, as a reference, a two-layer linear net with plain MAML (its upper layers are an implicit KFO).

Theory (``theory.metaopt``, ``derivations/kfo_identities.py``): every shallow rule here is one step
``M⁺ = M − G P`` with ``P = α I`` (MAML), ``α diag λ`` (Meta-SGD) or ``α L̃ R̃`` (KFO, Meta-Curvature; ``L̃`` is
1 x 1).  The expected loss is an exact quadratic in ``P`` whose minimum over each class is a closed form:
the *floors* ``loss_fixed`` (MAML at this α: the shallow floor), ``loss_diagonal`` (Meta-SGD) and
``loss_full`` (``P* = H⁻¹ΣR``, always symmetric positive definite, so KFO with and without PSD factors
and Meta-Curvature share it).  The optimally tuned scalar step ``loss_scalar`` is shown for reference.

Training: one Adam run on fresh task batches per model (:func:`linmeta.sim.training.train_with_checkpoints`),
whose callback records the learning curves on one common held-out set; the last quarter uses
``lr * lr_drop``.  Final losses are measured on one common fresh test set (K-shot
support sets, population query), paired across methods; the SE combines the seed-to-seed and the
test-task variance.

Checks: (exact, ~1e-12) each meta-optimizer at its identity initialisation gives MAML's adapted
parameters and MAML's meta-gradient in θ (P6); a shallow KFO(psd) with ``LᵀL = W_{L:2}W_{L:2}ᵀ``, ``R = I``
reproduces a deep net's bottom-only adaptation, its meta-loss, and (by the chain rule) its meta-gradient
(P7), for a random three-layer two-output net and for the meta-trained deep net; (statistical, 4 SE) each
method ends at the closed-form floor of its class; the paired ordering KFO < Meta-SGD < MAML.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, adapt, end_to_end, init_deep_linear, meta_value_and_grad, sample_moments
from ..meta import adapted_map
from ..preconditioners import KFO, Identity, MetaCurvature, MetaSGD
from .. import as_generator
from ..theory import metaopt, precondition
from . import plotting
from .. import to_numpy
from ..sim.evaluation import on_backend_of, post_adaptation_losses, test_set
from ..sim.stats import crossed_table_mean_se
from ..sim.training import checkpoint_steps, train_with_checkpoints
from .base import Experiment, Param, below, close_se, small

PARAMS = {
    "d": Param(int, 4, 6, low=2, high=32, help="input dimension"),
    "spectrum": Param(float, 0.5, 0.6, low=0.05, high=1.0, help="eigenvalues of Σ are spectrum^i, i = 0..d-1"),
    "mean_norm": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="norm of the mean task E[w*] (random direction)"),
    "K": Param(int, 10, 10, low=1, high=1000, help="support shots"),
    "noise": Param(float, 0.0, 0.0, low=0.0, high=10.0, help="label noise σ"),
    "alpha": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="fixed inner step"),
    "width": Param(int, 8, 12, low=1, high=128, help="hidden width of the deep reference"),
    "methods": Param("ints", (0, 1, 2, 3, 4, 5), (0, 1, 2, 3, 4, 5), low=0, high=5,
                     help="methods to train: 0 MAML, 1 Meta-SGD, 2 KFO, 3 KFO non-PSD, 4 Meta-Curvature, 5 deep MAML"),
    "steps": Param(int, 600, 3000, low=1, high=1_000_000, help="meta-training (Adam) steps"),
    "segments": Param(int, 8, 30, low=1, high=1000, help="checkpoints along training"),
    "lr": Param(float, 0.05, 0.03, low=1e-6, high=1.0, help="Adam learning rate"),
    "lr_drop": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="lr factor for the last quarter"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent runs (run axis)"),
    "curve_tasks": Param(int, 2048, 8192, low=16, high=1_000_000, help="common held-out tasks of the learning curves"),
    "test_tasks": Param(int, 4000, 40000, low=100, high=10_000_000,
                        help="common fresh test tasks for the final losses"),
}

METHODS = {
    0: ("maml", "MAML", "fixed"),
    1: ("meta-sgd", "Meta-SGD", "diagonal"),
    2: ("kfo", "KFO (PSD)", "full"),
    3: ("kfo-nonpsd", "KFO (non-PSD)", "full"),
    4: ("meta-curvature", "Meta-Curvature", "full"),
    5: ("deep", "deep MAML (L=2)", "full"),
}
FLOOR_LABELS = {"fixed": "MAML at fixed α", "scalar": "optimal scalar step", "diagonal": "best diagonal P (Meta-SGD)",
                "full": "best P (KFO / Meta-Curvature)"}


def _precond(key):
    return {"maml": Identity(), "meta-sgd": MetaSGD(), "kfo": KFO(psd=True), "kfo-nonpsd": KFO(psd=False),
            "meta-curvature": MetaCurvature(), "deep": Identity()}[key]


def family(cfg) -> GaussianRegression:
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 51]))
    d = cfg["d"]
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    S = (V * cfg["spectrum"] ** np.arange(d)) @ V.T
    mu = rng.standard_normal((1, d))
    mu *= cfg["mean_norm"] / np.linalg.norm(mu)
    return GaussianRegression(d=d, out=1, mean=mu, input_cov=(S + S.T) / 2, noise_std=cfg["noise"])


def _train_piece(item, backend=None):
    cfg, key = item["cfg"], item["method"]
    fam = family(cfg)
    rule = InnerLoop(1, cfg["alpha"])
    widths = (cfg["width"],) if key == "deep" else ()
    params = init_deep_linear(cfg["d"], widths, 1, rng=np.random.SeedSequence([cfg["seed"], 61, len(widths)]),
                              n_runs=cfg["seeds"], backend=backend)
    precond = _precond(key)
    phi = precond.init(params, rule.adapted_layers(len(params)))
    curve_set = on_backend_of(test_set(fam, cfg["K"], cfg["curve_tasks"], np.random.SeedSequence([cfg["seed"], 71])),
                              params)
    bounds = checkpoint_steps(cfg["steps"], cfg["segments"])
    curve = []
    # one inner step is never iterated: the many-step stability bound 2/λ_max does not apply (and the optimal
    # one-step preconditioner overshoots the largest curvature of some K-shot support sets), so it is not checked
    params, phi = train_with_checkpoints(
        params, fam, rule, bounds=bounds, lr=cfg["lr"], lr_drop=cfg["lr_drop"], K=cfg["K"],
        tasks_per_step=cfg["tasks_per_step"], precond=precond, phi=phi, learn_phi=True,
        seed=[cfg["seed"], 81, int(item["index"])],
        on_checkpoint=lambda step, p, f: curve.append(post_adaptation_losses(p, curve_set, rule, precond, f).mean(axis=1)))
    final = post_adaptation_losses(params, test_set(fam, cfg["K"], cfg["test_tasks"], np.random.SeedSequence([cfg["seed"], 72])), rule, precond, phi)
    params = tuple(to_numpy(W) for W in params)
    phi = tuple(tuple(to_numpy(p) for p in pl) for pl in phi)
    out = {"step": bounds, "curve": np.array(curve), "final": final,
           "params": {f"W{l}": W for l, W in enumerate(params)}}
    if key != "deep":  # the learned right preconditioner P (runs, d, d) of the shallow rule and its exact loss
        M = params[0]
        d = cfg["d"]
        if key == "maml":
            P = np.broadcast_to(cfg["alpha"] * np.eye(d), (cfg["seeds"], d, d))
        elif key == "meta-sgd":
            P = cfg["alpha"] * np.eye(d) * phi[0][0][:, 0, None, :]
        else:
            Lt, Rt = precond.effective_factors(phi[0])
            P = cfg["alpha"] * Lt[:, 0, 0, None, None] * Rt
        out["P"] = P
        out["phi"] = {f"phi{i}": x for i, x in enumerate(phi[0])}
        out["exact"] = np.array([metaopt.one_step_loss(P[r], fam.input_cov, metaopt.error_moment(M[r], fam), cfg["K"],
                                                       cfg["noise"]) for r in range(cfg["seeds"])])
    return out


# ----------------------------------------------------------------------------------------------
# exact identities
# ----------------------------------------------------------------------------------------------


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(np.asarray(b))), 1e-300))


def reductions(seed: int) -> dict:
    """Max relative difference from MAML at identity init: adapted params and meta-gradient in θ (P6)."""
    rng = as_generator(np.random.SeedSequence([seed, 91]))
    d, out = 4, 2
    params = init_deep_linear(d, (3,), out, rng=rng, n_runs=2)
    X, Y = rng.standard_normal((2, 5, 6, d)), rng.standard_normal((2, 5, 6, out))
    Xq, Yq = rng.standard_normal((2, 5, 9, d)), rng.standard_normal((2, 5, 9, out))
    support, query = sample_moments(X, Y), sample_moments(Xq, Yq)
    rule = InnerLoop(2, 0.1)
    ref_theta = adapt(params, support, rule)
    ref = meta_value_and_grad(params, support, query, rule)
    res = {}
    for key, pc in (("meta-sgd", MetaSGD()), ("kfo", KFO(psd=True)), ("kfo-nonpsd", KFO(psd=False)),
                    ("meta-curvature", MetaCurvature())):
        theta = adapt(params, support, rule, pc)
        mg = meta_value_and_grad(params, support, query, rule, pc)
        res[key] = {"theta": max(_rel(a, b) for a, b in zip(theta, ref_theta)),
                    "grad": max(_rel(a, b) for a, b in zip(mg.params, ref.params)),
                    "value": _rel(mg.value, ref.value)}
    return res


def p7(params, support, query, alpha: float, steps: int) -> dict:
    """Deep bottom-only adaptation against a shallow KFO(psd) with ``L = (S Sᵀ)^½``, ``R = I`` (P7).

    Parameters
    ----------
    params : deep layers (no run axis), depth ≥ 2.
    support, query : losses with a task axis ``(T, ...)``.

    Returns
    -------
    dict of max relative differences: adapted end-to-end maps, meta-loss, and the meta-gradient in
    ``W_1`` against ``Sᵀ`` times the shallow meta-gradient in ``M``.
    """
    S = params[-1]
    for W in params[-2:0:-1]:
        S = S @ W
    Lf = precondition.psd_power(S @ S.T, 0.5)  # symmetric, LᵀL = S Sᵀ (also when S Sᵀ is singular)
    M, d = end_to_end(params), params[0].shape[-1]
    kfo_phi = ((Lf, np.eye(d)),)
    rule_deep, rule_kfo = InnerLoop(steps, alpha, layers="first"), InnerLoop(steps, alpha)
    deep = adapted_map(params, support, rule_deep)
    shallow = adapted_map((M,), support, rule_kfo, KFO(psd=True), kfo_phi)
    gd = meta_value_and_grad(params, support, query, rule_deep)
    gs = meta_value_and_grad((M,), support, query, rule_kfo, KFO(psd=True), kfo_phi)
    return {"map": _rel(shallow, deep), "value": _rel(gs.value, gd.value), "grad": _rel(S.T @ gs.params[0], gd.params[0])}


def run(cfg, ctx):
    items = [{"cfg": cfg, "method": METHODS[i][0], "index": i} for i in cfg["methods"]]
    pieces = ctx.map(_train_piece, items, desc="arnold_metaopt")
    fam = family(cfg)
    res = {"methods": {it["method"]: p for it, p in zip(items, pieces)}}
    res["theory"] = metaopt.preconditioner_floors(fam, cfg["K"], cfg["alpha"])
    res["reductions"] = reductions(cfg["seed"])
    # P7 on a random three-layer, two-output net (the KFO left factor is a 2 x 2 matrix) ...
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 101]))
    params = init_deep_linear(3, (4, 3), 2, rng=rng)
    X, Y = rng.standard_normal((5, 7, 3)), rng.standard_normal((5, 7, 2))
    Xq, Yq = rng.standard_normal((5, 9, 3)), rng.standard_normal((5, 9, 2))
    res["p7"] = {"random": p7(params, sample_moments(X, Y), sample_moments(Xq, Yq), 0.05, 3)}
    # ... and on the meta-trained deep reference (seed 0), on held-out K-shot tasks
    if "deep" in res["methods"]:
        deep = res["methods"]["deep"]["params"]
        trained = tuple(deep[f"W{l}"][0] for l in range(len(deep)))
        batch = test_set(fam, cfg["K"], 64, np.random.SeedSequence([cfg["seed"], 73]))
        res["p7"]["trained"] = p7(trained, batch.support, batch.query, cfg["alpha"], 3)
    return res


_FLOOR_MATH = {"fixed": "MAML at fixed $\\alpha$", "scalar": "optimal scalar step",
               "diagonal": "best diagonal $P$ (Meta-SGD)", "full": "best $P$ (KFO / Meta-Curvature)"}


@plotting.styled
def plot(res, cfg):
    fig, (ax, bx) = plotting.figure(2, width="text", height=3.3, gridspec_kw={"width_ratios": (1.3, 1)})
    th = res["theory"]
    floor_style = {"fixed": "--", "scalar": ":", "diagonal": "-.", "full": "-"}
    for key, ls in floor_style.items():
        ax.axhline(th[f"loss_{key}"], color="k", ls=ls, lw=0.9, alpha=0.7,
                   label=f"floor: {_FLOOR_MATH.get(key, FLOOR_LABELS[key])} (closed form)")
        bx.axvline(th[f"loss_{key}"], color="k", ls=ls, lw=0.9, alpha=0.7)
    names = [it for it in res["methods"]]
    labels = [next(v[1] for v in METHODS.values() if v[0] == k) for k in names]
    for i, key in enumerate(names):
        p = res["methods"][key]
        plotting.band(ax, p["step"], p["curve"], label=labels[i], color=plotting.COLORS[i], axis=1, spread="minmax")
        m, se = crossed_table_mean_se(p["final"])
        bx.errorbar([m], [i], xerr=[2 * se], fmt="o", ms=3.5, capsize=1.5, elinewidth=0.8, color=plotting.COLORS[i])
    ax.set_yscale("log")
    ax.set(xlabel="meta-training iteration", ylabel="post-adaptation meta-test loss")
    ax.set_title(f"mean, min–max over {cfg['seeds']} seeds; {cfg['curve_tasks']} held-out tasks")
    bx.set_yticks(range(len(names)), [lab.replace("L=2", "$L=2$") for lab in labels])
    bx.set_ylim(len(names) - 0.5, -0.5)
    bx.set(xlabel="final post-adaptation loss ($\\pm$2 SE)", xscale="log")
    plotting.plain_log_ticks(ax.yaxis)
    plotting.plain_log_ticks(bx.xaxis)
    bx.set_title(f"final loss vs each class's floor\n({cfg['test_tasks']} fresh test tasks)")
    plotting.label_panels((ax, bx))
    plotting.figlegend(fig, (ax,))
    for lab in fig.legends[-1].get_texts():
        lab.set_text(lab.get_text().replace("L=2", "$L=2$"))
    return plotting.finish(fig, "Meta-optimizers learned with the initialisation reach the closed-form optimum of "
                                f"their class ($d={cfg['d']}$, $K={cfg['K']}$, $\\alpha={cfg['alpha']:g}$, one step)")


def checks(res, cfg):
    out = []
    for key, r in res["reductions"].items():
        out.append(small(f"{key} at identity init = MAML: adapted params (max rel. diff)", r["theta"], 1e-12,
                         claim="arnold.metaopt-identity-reduction"))
        out.append(small(f"{key} at identity init = MAML: meta-gradient in theta (max rel. diff)", r["grad"], 1e-12,
                         claim="arnold.metaopt-identity-reduction"))
    for which, r in res["p7"].items():
        net = "random 3-layer 2-output net" if which == "random" else "meta-trained deep net"
        out.append(small(f"arnold.shallow-kfo-equals-deep ({net}): shallow KFO(L^T L = S S^T, R = I) = deep bottom-only, adapted map "
                         "(3 steps)", r["map"], 1e-12, claim="arnold.shallow-kfo-equals-deep"))
        out.append(small(f"arnold.shallow-kfo-equals-deep ({net}): same meta-loss", r["value"], 1e-12, claim="arnold.shallow-kfo-equals-deep"))
        out.append(small(f"arnold.shallow-kfo-equals-deep ({net}): deep meta-gradient in W1 = S^T x shallow KFO meta-gradient in M",
                         r["grad"], 1e-10, claim="arnold.shallow-kfo-equals-deep"))
    th = res["theory"]
    finals = {}
    for key, p in res["methods"].items():
        label, cls = next((v[1], v[2]) for v in METHODS.values() if v[0] == key)
        m, se = crossed_table_mean_se(p["final"])
        finals[key] = p["final"]
        out.append(close_se(f"{label}: final loss = closed-form floor of its class ({FLOOR_LABELS[cls]})",
                            th[f"loss_{cls}"], m, se, claim="arnold.metaopt-reach-floors"))
    for better, worse in (("kfo", "meta-sgd"), ("meta-sgd", "maml"), ("deep", "maml")):
        if better in finals and worse in finals:
            m, se = crossed_table_mean_se(finals[better] - finals[worse])  # paired: same test set
            claim = "arnold.deep-escapes-floor" if better == "deep" else "arnold.metaopt-reach-floors"
            out.append(below(f"{better} ends below {worse} (paired difference)", 0.0, m, se, claim=claim))
    return out


EXPERIMENT = Experiment(
    name="arnold_metaopt",
    paper="Arnold et al. 2021",
    figure="§5 (meta-optimizers)",
    claim="Meta-SGD, KFO and Meta-Curvature reduce exactly to MAML at identity init; a shallow KFO reproduces a "
          "deep net's bottom-only adaptation; learned jointly with the init, each reaches its closed-form optimum.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
