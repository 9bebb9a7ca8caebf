"""Arnold et al. (2021), headline comparison: {shallow, deep} × {MAML, +extra linear layers, +Meta-SGD, +KFO}.

Linear-regression analogue of the paper's comparison (its numbers are for CNNs on image benchmarks and
were not retrievable).  Models, all of the same capacity (a linear map):

* **shallow**: ``ŷ = w x`` (L = 1); **deep**: ``ŷ = W_L ⋯ W_1 x`` with hidden widths ``deep_widths``;
* **+LinNet**: the base with extra linear layers of widths ``lin_widths`` inserted on the output side
  (before the head), "added to the output layers ... without altering the modelling capacity" [V];
* **+Meta-SGD**: per-parameter inner steps (:class:`linmeta.preconditioners.MetaSGD`), parametrised as
  in learn2learn's MetaSGD (the learned steps λ are the step sizes themselves, initialised to α; the
  rule's α is 1) so Adam moves them at the rate it moves the layers;
* **+KFO**: Kronecker-factored PSD preconditioner ``α L̃ G R̃`` per layer (:class:`~linmeta.preconditioners.KFO`,
  identity init).

All use second-order MAML with one step at the same small fixed α (every variant equals plain MAML at
its initialisation), Adam on fresh task batches with a learning-rate drop for the last quarter
(:func:`linmeta.sim.training.train_with_checkpoints` → :func:`linmeta.train.meta_train` with ``precond``,
``learn_phi=True``), several seeds.  Two task settings: ``iso`` (``x ~ N(0, I)``) and ``rotated``
(``x ~ N(0, Σ)`` with Σ a randomly rotated, ill-conditioned covariance, condition number ``cond``,
``tr Σ = d``), ``w* ~ N(0, I)`` in both.  Final losses are measured on a common fresh test set per
setting (paired across variants; SE over seeds and test tasks, :func:`linmeta.sim.stats.crossed_mean_se`).

Claims tested in every setting (a failing check means the claim does not hold there):

1. extra linear layers improve both the shallow and the deep model (each significantly, 4 SE);
2. KFO performs best: within each base model, no other variant is significantly (4 SE) better than KFO;
3. meta-optimizers help shallow models most: for Meta-SGD and KFO, the improvement over MAML is larger
   (4 SE) for the shallow model than for the deep one.

Closed forms (``theory.shallow``): shallow MAML's floor at α and the floor at the optimal step α*.  For
isotropic tasks the latter is also the lowest loss of any linear one-step preconditioner (the expected
loss is convex in the preconditioner and rotation invariant, so an isotropic one is optimal), so shallow
+ Meta-SGD / + KFO must end at it (checked, 4 SE); the deep models adapt non-linearly and are not bound by it.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, MetaSGD, init_deep_linear
from ..theory import shallow
from . import plotting
from ..sim.evaluation import post_adaptation_losses, test_set
from ..sim.stats import crossed_table_mean_se
from ..sim.training import checkpoint_steps, train_with_checkpoints
from .base import Check, Experiment, Param, as_finding, below, close_se

VARIANTS = ("maml", "lin", "meta-sgd", "kfo")
LABELS = {"maml": "MAML", "lin": "+LinNet", "meta-sgd": "+Meta-SGD", "kfo": "+KFO"}
BASES = ("shallow", "deep")

PARAMS = {
    "d": Param(int, 4, 8, low=1, high=32, help="input dimension"),
    "K": Param(int, 10, 10, low=1, high=1000, help="support shots"),
    "deep_widths": Param("ints", (8, 8), (16, 16), low=1, high=128, help="hidden widths of the deep base model"),
    "lin_widths": Param("ints", (8,), (16,), low=1, high=128, help="widths of the extra output-side linear layers"),
    "alpha": Param(float, 0.01, 0.01, low=1e-5, high=1.0, help="fixed inner step"),
    "settings": Param(str, "rotated", "iso,rotated", choices=("iso", "rotated", "iso,rotated"),
                      help="task settings"),
    "cond": Param(float, 10.0, 10.0, low=1.0, high=1e4, help="condition number of the rotated input covariance"),
    "noise": Param(float, 0.0, 0.0, low=0.0, high=10.0, help="label noise"),
    "steps": Param(int, 300, 3000, low=4, high=1_000_000, help="meta-training (Adam) steps"),
    "lr": Param(float, 0.05, 0.03, low=1e-6, high=1.0, help="Adam learning rate"),
    "lr_drop": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="lr factor for the last quarter of training"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent runs"),
    "test_tasks": Param(int, 20000, 100000, low=100, high=10_000_000, help="common fresh test tasks per setting"),
}


def family(cfg, setting: str) -> GaussianRegression:
    d = cfg["d"]
    if setting == "iso":
        return GaussianRegression(d=d, noise_std=cfg["noise"])
    rng = np.random.default_rng(np.random.SeedSequence([cfg["seed"], 4242]))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.geomspace(1.0, 1.0 / cfg["cond"], d)
    S = (Q * lam) @ Q.T
    return GaussianRegression(d=d, input_cov=S * d / np.trace(S), noise_std=cfg["noise"])


def architecture(cfg, base: str, variant: str) -> tuple:
    widths = () if base == "shallow" else tuple(cfg["deep_widths"])
    return widths + (tuple(cfg["lin_widths"]) if variant == "lin" else ())


def _model(cfg, base, variant, backend=None):
    """Initial params, inner rule, preconditioner and its initial parameters."""
    widths = architecture(cfg, base, variant)
    params = init_deep_linear(cfg["d"], widths, 1, rng=np.random.SeedSequence([cfg["seed"], len(widths), 5]),
                              n_runs=cfg["seeds"], backend=backend)
    if variant == "meta-sgd":
        # learn2learn parametrisation: the per-parameter steps λ are the step sizes (init α), rule step 1
        phi = MetaSGD(init_value=cfg["alpha"]).init(params, range(len(params)))
        return params, InnerLoop(1, 1.0), "meta-sgd", phi
    if variant == "kfo":
        return params, InnerLoop(1, cfg["alpha"]), "kfo", None
    return params, InnerLoop(1, cfg["alpha"]), None, None


def _piece(item, backend=None):
    cfg, setting, base, variant = item["cfg"], item["setting"], item["base"], item["variant"]
    fam = family(cfg, setting)
    params, rule, precond, phi = _model(cfg, base, variant, backend)
    params, phi = train_with_checkpoints(params, fam, rule, bounds=checkpoint_steps(cfg["steps"], 1), lr=cfg["lr"],
                                         lr_drop=cfg["lr_drop"], K=cfg["K"], tasks_per_step=cfg["tasks_per_step"],
                                         seed=[cfg["seed"], BASES.index(base), VARIANTS.index(variant), 6],
                                         precond=precond, phi=phi, learn_phi=True)
    batch = test_set(fam, cfg["K"], cfg["test_tasks"], np.random.SeedSequence([cfg["seed"], 7780]))
    return {"final": post_adaptation_losses(params, batch, rule, precond, phi)}


def _settings(cfg):
    return tuple(cfg["settings"].split(","))


def run(cfg, ctx):
    items = [{"cfg": cfg, "setting": s, "base": b, "variant": v} for s in _settings(cfg) for b in BASES
             for v in VARIANTS]
    pieces = ctx.map(_piece, items, desc="arnold_headline")
    res = {}
    for it, p in zip(items, pieces):
        res.setdefault(it["setting"], {}).setdefault(it["base"], {})[it["variant"]] = p["final"]
    for s in _settings(cfg):
        fam = family(cfg, s)
        table = np.array([[crossed_table_mean_se(res[s][b][v]) for v in VARIANTS] for b in BASES])  # (base, variant, 2)
        a_opt, f_opt = shallow.optimal_alpha(fam, cfg["K"], 1)
        res[s]["table_mean"], res[s]["table_se"] = table[..., 0], table[..., 1]
        res[s]["theory"] = {"floor": shallow.shallow_floor(fam, cfg["K"], cfg["alpha"], 1), "alpha_opt": a_opt,
                            "floor_opt": f_opt}
    return res


@plotting.styled
def plot(res, cfg):
    settings = _settings(cfg)
    fig, axes = plotting.figure(len(settings), width="text" if len(settings) > 1 else "column",
                                height=2.7, sharey=len(settings) > 1)
    width = 0.2
    for ax, s in zip(axes, settings):
        r = res[s]
        x = np.arange(len(BASES))
        for j, v in enumerate(VARIANTS):
            ax.bar(x + (j - 1.5) * width, r["table_mean"][:, j], width, yerr=2 * r["table_se"][:, j],
                   color=plotting.COLORS[j], label=LABELS[v], capsize=1.5, error_kw={"elinewidth": 0.8})
        ax.axhline(r["theory"]["floor"], color="k", ls="--", lw=1,
                   label=f"shallow floor, $\\alpha={cfg['alpha']:g}$ (closed form)")
        ax.axhline(r["theory"]["floor_opt"], color="k", ls=":", lw=1,
                   label="shallow floor, optimal $\\alpha$ (closed form)")
        ax.set_xticks(x, ["shallow ($L=1$)", f"deep ($L={len(cfg['deep_widths']) + 1}$)"])
        ax.set_title("isotropic inputs" if s == "iso" else f"rotated inputs, condition number {cfg['cond']:g}")
    axes[0].set_ylabel("final post-adaptation loss ($\\pm$2 SE)")
    if len(settings) > 1:
        plotting.label_panels(axes)
    h, lab = axes[0].get_legend_handles_labels()
    order = [lab.index(LABELS[v]) for v in VARIANTS] + [i for i, t in enumerate(lab) if t not in LABELS.values()]
    plotting.figlegend(fig, handles=[h[i] for i in order], labels=[lab[i] for i in order])
    return plotting.finish(fig, "MAML vs extra linear layers vs meta-optimizers (linear regression, "
                                f"$d={cfg['d']}$, $K={cfg['K']}$, $\\alpha={cfg['alpha']:g}$, {cfg['seeds']} seeds)")


def _diff(a, b):
    """Mean and SE of ``a − b`` for paired (seeds, tasks) losses."""
    return crossed_table_mean_se(np.asarray(a) - np.asarray(b))


def checks(res, cfg):
    out = []
    for s in _settings(cfg):
        r = res[s]
        for b in BASES:
            m, se = _diff(r[b]["lin"], r[b]["maml"])
            out.append(as_finding(below(f"[{s}] extra linear layers improve the {b} model (LinNet - MAML < 0)",
                                        0.0, m, se), claim="arnold.extra-layers-help"))
        for b in BASES:
            others = [v for v in VARIANTS if v != "kfo"]
            diffs = [_diff(r[b]["kfo"], r[b][v]) for v in others]
            worst = int(np.argmax([(m / se) if se > 0 else np.inf * np.sign(m) for m, se in diffs]))
            m, se = diffs[worst]
            ranking = sorted(VARIANTS, key=lambda v: r[b][v].mean())
            out.append(Check(f"[{s}] KFO best on the {b} model (or tied): KFO - {LABELS[others[worst]]} "
                             "(the least favourable comparison)", 0.0, m, se,
                             "diff < 4 SE; ranking " + " < ".join(f"{LABELS[v]} {r[b][v].mean():.4f}" for v in ranking),
                             m < 4 * se, kind="finding", claim="arnold.kfo-best"))
        if s == "iso":
            # isotropic tasks: the optimal linear one-step preconditioner is isotropic (the loss is convex in it
            # and rotation invariant), so the optimal-step floor bounds shallow + Meta-SGD/KFO from below
            for v in ("meta-sgd", "kfo"):
                m, se = crossed_table_mean_se(r["shallow"][v])
                out.append(close_se(f"[{s}] shallow {LABELS[v]} reaches the optimal-step floor (its lower bound)",
                                    r["theory"]["floor_opt"], m, se, claim="arnold.metaopt-reach-floors"))
        for v in ("meta-sgd", "kfo"):
            gain = {b: np.asarray(r[b]["maml"]) - np.asarray(r[b][v]) for b in BASES}
            m, se = crossed_table_mean_se(gain["deep"] - gain["shallow"])
            out.append(as_finding(below(f"[{s}] {LABELS[v]} helps the shallow model more than the deep one "
                                        f"(gain deep - gain shallow < 0; gains {gain['shallow'].mean():.3f} vs "
                                        f"{gain['deep'].mean():.3f})", 0.0, m, se),
                                  claim="arnold.metaopt-help-shallow-most"))
    return out


EXPERIMENT = Experiment(
    name="arnold_headline",
    paper="Arnold et al. 2021",
    figure="headline table (linear analogue)",
    claim="Extra linear layers help both shallow and deep models, KFO performs best, and meta-optimizers help "
          "shallow models most (tested in a linear-regression analogue).",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
