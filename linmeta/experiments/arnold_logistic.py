"""Arnold et al. (2021), Figure 1 (classification): LogR vs LogR+LinNet vs LogR+KFO.

Binary tasks ``y = 1[w*ᵀx > 0]`` (labels flipped with probability ``label_noise``), ``x ~ N(0, I_d)``,
``w* ~ N(μ, I)``, logistic loss, K support / Q query samples, ``inner_steps`` steps of second-order
MAML at a small fixed α.  Models of the same (linear) capacity, meta-trained by Adam on fresh tasks:

* LogR: ``z = w x``;
* LogR+LinNet(1), LogR+LinNet(2): one or two extra linear layers on the output side,
  ``z = w_2 W_1 x`` and ``z = w_3 W_2 W_1 x`` with hidden width ``width``;
* LogR+KFO: LogR whose inner step is ``w ← w − α L̃ g R̃`` with learned PSD factors (identity init).

Two task families: *centred* (``μ = 0``) and *shifted* (``‖μ‖ = shift``, random direction).

Theory (``theory.metaopt``, module docstring; [D], checked here):

* centred tasks are symmetric under ``w* → −w*`` (labels flip), so every model's pre-adaptation accuracy
  is exactly 1/2, and LogR's MAML meta-loss is even in ``w₀``; it is minimised at ``w₀ = 0`` (numerically:
  it grows like ``‖w₀‖²``).  From ``w₀ = 0`` one step gives the class-mean difference, whose expected
  accuracy and loss (``logr_zero_init_limits``) are the best LogR can do at this α — the loss only
  ``log 2 − α(1−2p)²/(2π) + O(α²)``.  The accuracy does not depend on α but is very sensitive to a small
  residual ``w₀``, a direction in which the meta-loss is nearly flat.
* LinNet and KFO can scale (and shape) their step, so they can go far below LogR's loss limit.

Claims tested (Arnold et al.'s classification claims; *findings*, reported as reproduced or not, per family):
LogR's post-adaptation accuracy stays near its pre-adaptation level — operationalised as: its accuracy
gain (post − pre) is below ``near_fraction`` (default 1/4) of LogR+LinNet(1)'s gain, paired, by 4 SE;
LogR+LinNet's accuracy rises with adaptation; LogR+KFO matches or beats LogR+LinNet at equal
α (not significantly worse, 4 SE).  All final numbers are measured on one common fresh test set per family,
paired across models; SEs combine the seed-to-seed and the test-task variance.

Training is one Adam run of :func:`linmeta.train.meta_train` per model whose callback records accuracy
checkpoints (:func:`linmeta.sim.training.train_with_checkpoints`; the last quarter uses ``lr * lr_drop``).
"""
from __future__ import annotations

import numpy as np

from .. import BinaryClassification, InnerLoop, end_to_end, init_deep_linear
from ..meta import adapted_map
from ..preconditioners import KFO, Identity
from .. import as_generator
from . import plotting
from ..sim.montecarlo import logr_zero_init_limits
from ..sim.stats import crossed_table_mean_se
from ..sim.training import checkpoint_steps, train_with_checkpoints
from .base import Check, Experiment, Param, below, close_se

PARAMS = {
    "d": Param(int, 8, 16, low=1, high=128, help="input dimension"),
    "K": Param(int, 10, 10, low=1, high=1000, help="support samples"),
    "Q": Param(int, 20, 20, low=1, high=1000, help="query samples during meta-training"),
    "eval_Q": Param(int, 100, 200, low=1, high=10000, help="query samples per test task"),
    "alpha": Param(float, 0.1, 0.1, low=1e-4, high=2.0, help="fixed inner step"),
    "inner_steps": Param(int, 1, 1, low=1, high=5, help="inner steps k"),
    "width": Param(int, 8, 16, low=1, high=256, help="hidden width of the extra linear layers"),
    "shift": Param(float, 2.0, 2.0, low=0.0, high=100.0, help="‖E[w*]‖ of the shifted family"),
    "label_noise": Param(float, 0.0, 0.0, low=0.0, high=0.5, help="label flip probability"),
    "near_fraction": Param(float, 0.25, 0.25, low=0.0, high=1.0,
                           help="'stays near pre-adaptation': LogR's accuracy gain < this x LogR+LinNet(1)'s gain", role="check"),
    "steps": Param(int, 300, 2000, low=1, high=1_000_000, help="meta-training (Adam) steps"),
    "segments": Param(int, 6, 20, low=1, high=1000, help="checkpoints along training"),
    "lr": Param(float, 0.02, 0.01, low=1e-6, high=1.0, help="Adam learning rate"),
    "lr_drop": Param(float, 0.1, 0.1, low=1e-3, high=1.0, help="lr factor for the last quarter"),
    "tasks_per_step": Param(int, 32, 64, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent runs (run axis)"),
    "curve_tasks": Param(int, 256, 1024, low=16, high=1_000_000, help="common held-out tasks of the learning curves"),
    "test_tasks": Param(int, 1000, 5000, low=50, high=1_000_000, help="common fresh test tasks for the final numbers"),
    "limit_samples": Param(int, 200_000, 2_000_000, low=1000, high=1_000_000_000,
                           help="Monte Carlo samples of the LogR zero-init limit"),
}

MODELS = {"logr": ("LogR", ()), "linnet1": ("LogR+LinNet(1)", 1), "linnet2": ("LogR+LinNet(2)", 2),
          "kfo": ("LogR+KFO", ())}
FAMILIES = ("centred", "shifted")


def family(cfg, which: str) -> BinaryClassification:
    mean = np.zeros(cfg["d"])
    if which == "shifted":
        rng = as_generator(np.random.SeedSequence([cfg["seed"], 111]))
        u = rng.standard_normal(cfg["d"])
        mean = cfg["shift"] * u / np.linalg.norm(u)
    return BinaryClassification(d=cfg["d"], mean=mean, label_noise=cfg["label_noise"])


def test_set(fam, cfg, n_tasks, tag):
    rng = as_generator(np.random.SeedSequence([cfg["seed"], tag]))
    return fam.meta_batch(fam.sample_tasks(n_tasks, rng), cfg["K"], cfg["eval_Q"], rng)


def evaluate(params, batch, rule, precond, phi) -> dict:
    """Pre- and post-adaptation accuracy and loss of every run on every test task, each (runs, T)."""
    M0 = end_to_end(params)[..., None, :, :]
    M1 = adapted_map(params, batch.support, rule, precond, phi)
    q = batch.query
    return {"acc_pre": np.asarray(q.accuracy(M0)), "acc_post": np.asarray(q.accuracy(M1)),
            "loss_pre": np.asarray(q.value(M0)), "loss_post": np.asarray(q.value(M1))}


def _train_piece(item):
    cfg, which, key = item["cfg"], item["family"], item["model"]
    fam = family(cfg, which)
    extra = MODELS[key][1]
    widths = (cfg["width"],) * extra if extra else ()
    params = init_deep_linear(cfg["d"], widths, 1, n_runs=cfg["seeds"],
                              rng=np.random.SeedSequence([cfg["seed"], 121, len(widths)]))
    rule = InnerLoop(cfg["inner_steps"], cfg["alpha"])
    precond = KFO(psd=True) if key == "kfo" else Identity()
    phi = precond.init(params, rule.adapted_layers(len(params)))
    curve_set = test_set(fam, cfg, cfg["curve_tasks"], 131 + FAMILIES.index(which))
    bounds = checkpoint_steps(cfg["steps"], cfg["segments"])
    curve = []
    params, phi = train_with_checkpoints(
        params, fam, rule, bounds=bounds, lr=cfg["lr"], lr_drop=cfg["lr_drop"], K=cfg["K"], Q=cfg["Q"],
        tasks_per_step=cfg["tasks_per_step"], precond=precond, phi=phi, learn_phi=True,
        seed=[cfg["seed"], 141, FAMILIES.index(which), len(widths), int(key == "kfo")],
        on_checkpoint=lambda step, p, f: curve.append(
            {k: v.mean(axis=1) for k, v in evaluate(p, curve_set, rule, precond, f).items()}))
    final = evaluate(params, test_set(fam, cfg, cfg["test_tasks"], 151 + FAMILIES.index(which)), rule, precond, phi)
    return {"step": bounds, "curve": {k: np.array([c[k] for c in curve]) for k in curve[0]}, "final": final,
            "init_norm": np.linalg.norm(end_to_end(params), axis=(-2, -1))}


def run(cfg, ctx):
    items = [{"cfg": cfg, "family": f, "model": m} for f in FAMILIES for m in MODELS]
    pieces = ctx.map(_train_piece, items, desc="arnold_logistic")
    res = {f: {} for f in FAMILIES}
    for it, p in zip(items, pieces):
        res[it["family"]][it["model"]] = p
    # LogR at w0 = 0 on the centred test set (engine), against the closed-form zero-init limits
    fam = family(cfg, "centred")
    batch = test_set(fam, cfg, cfg["test_tasks"], 151)
    zero = (np.zeros((1, 1, cfg["d"])),)
    rule = InnerLoop(1, cfg["alpha"])
    res["zero_init"] = {k: v for k, v in evaluate(zero, batch, rule, None, None).items() if k.endswith("post")}
    lim = logr_zero_init_limits(cfg["alpha"], cfg["d"], cfg["K"], cfg["label_noise"],
                                        samples=cfg["limit_samples"], rng=np.random.SeedSequence([cfg["seed"], 161]))
    res["theory"] = {k: np.float64(v) for k, v in lim.items()}
    return res


@plotting.styled
def plot(res, cfg):
    fig, axes = plotting.figure(2, 2, width="text", height=4.9, sharex=True)
    th = res["theory"]
    for row, which in enumerate(FAMILIES):
        ax_acc, ax_loss = axes[2 * row], axes[2 * row + 1]
        for i, (key, (label, _)) in enumerate(MODELS.items()):
            p = res[which][key]
            c = plotting.COLORS[i]
            plotting.band(ax_acc, p["step"], p["curve"]["acc_post"], label=label, color=c, axis=1, spread="minmax")
            ax_acc.plot(p["step"], p["curve"]["acc_pre"].mean(1), ":", color=c, lw=1)
            plotting.band(ax_loss, p["step"], p["curve"]["loss_post"], label=label, color=c, axis=1, spread="minmax")
        if cfg["inner_steps"] == 1 and which == "centred":
            ax_acc.axhline(th["accuracy"], color="k", ls="--", lw=1, label="LogR from $w_0=0$ (closed form)")
            ax_loss.axhline(th["loss"], color="k", ls="--", lw=1)
        ax_loss.axhline(np.log(2), color=plotting.GREY, ls="-.", lw=1, label="$\\log 2$ (chance loss)")
        title = "centred tasks, $E[w^*]=0$" if which == "centred" else f"shifted tasks, $\\|E[w^*]\\|={cfg['shift']:g}$"
        ax_acc.set(ylabel="meta-test accuracy", title=title)
        ax_loss.set(ylabel="post-adaptation meta-test loss", title=title)
    for ax in axes[2:]:
        ax.set_xlabel("meta-training iteration")
    plotting.label_panels(axes)
    plotting.figlegend(fig, handles=[*axes[0].get_legend_handles_labels()[0], *axes[1].get_legend_handles_labels()[0],
                                     plotting.handle("pre-adaptation accuracy (same colour)", color=plotting.GREY,
                                                     ls=":")])
    return plotting.finish(fig, f"LogR vs LogR+LinNet vs LogR+KFO at a fixed inner step $\\alpha={cfg['alpha']:g}$ "
                                f"($d={cfg['d']}$, $K={cfg['K']}$, $k={cfg['inner_steps']}$; post-adaptation: mean and "
                                f"min–max over {cfg['seeds']} seeds)")


def _finding(name, theory, value, se, tolerance, passed) -> Check:
    return Check(name, float(theory), float(value), float(se), tolerance, bool(passed), kind="finding")


def checks(res, cfg):
    from dataclasses import replace

    out = []
    th = res["theory"]
    # exact theory at w0 = 0 (centred test set; the reduction holds for any task distribution)
    if cfg["inner_steps"] == 1:
        z = res["zero_init"]
        for key, name in (("acc_post", "accuracy"), ("loss_post", "loss")):
            v = z[key][0]
            se = np.hypot(v.std(ddof=1) / np.sqrt(v.size), th[f"{name}_se"])
            out.append(close_se(f"LogR one step from w0 = 0: engine {name} = closed-form limit", th[name], v.mean(), se,
                                claim="arnold.logr-one-step-limit"))
    cen, shi = res["centred"], res["shifted"]
    # symmetry: pre-adaptation accuracy 1/2 on centred tasks, for every model
    for key, (label, _) in MODELS.items():
        m, se = crossed_table_mean_se(cen[key]["final"]["acc_pre"])
        out.append(close_se(f"centred: {label} pre-adaptation accuracy = 1/2 (symmetry)", 0.5, m, se,
                            claim="arnold.logr-one-step-limit"))
    if cfg["inner_steps"] == 1:
        m, se = crossed_table_mean_se(cen["logr"]["final"]["loss_post"])
        out.append(Check("centred: LogR post-adaptation loss does not beat its w0 = 0 optimum (closed form)",
                         float(th["loss"]), m, se, "sim + 4 SE >= theory", m + 4 * se >= th["loss"],
                         claim="arnold.logr-one-step-limit"))
        for key in ("linnet1", "linnet2", "kfo"):
            m, se = crossed_table_mean_se(cen[key]["final"]["loss_post"])
            out.append(below(f"centred: {MODELS[key][0]} post-adaptation loss below LogR's best (closed form)",
                             th["loss"], m, se, claim="arnold.logr-one-step-limit"))
    # the classification claims (arnold.logr-stuck, arnold.linnet-adapts, arnold.kfo-matches-linnet), both families
    for which, fam in (("centred", cen), ("shifted", shi)):
        gain = {k: fam[k]["final"]["acc_post"] - fam[k]["final"]["acc_pre"] for k in MODELS}
        f = cfg["near_fraction"]
        m_l, se_l = crossed_table_mean_se(gain["logr"])
        m_n, se_n = crossed_table_mean_se(gain["linnet1"])
        m_d, se_d = crossed_table_mean_se(gain["logr"] - f * gain["linnet1"])  # paired: same test tasks
        out.append(replace(_finding(f"{which}: arnold.logr-stuck: LogR post-adaptation accuracy stays near "
                                    f"pre-adaptation: its gain "
                            f"{m_l:.3f} +- {se_l:.3f} < {f:g} x LogR+LinNet(1)'s gain {m_n:.3f} +- {se_n:.3f}",
                            0.0, m_d, se_d, f"gain(LogR) - {f:g} gain(LinNet1) + 4 SE < 0", m_d + 4 * se_d < 0),
                            claim="arnold.logr-stuck"))
        for key in ("linnet1", "linnet2"):
            m, se = crossed_table_mean_se(gain[key])
            out.append(replace(_finding(f"{which}: arnold.linnet-adapts: {MODELS[key][0]} accuracy rises with adaptation "
                                        "(post - pre)", 0.0, m, se, "gain - 4 SE > 0", m - 4 * se > 0),
                                claim="arnold.linnet-adapts"))
            m, se = crossed_table_mean_se(fam["kfo"]["final"]["acc_post"] - fam[key]["final"]["acc_post"])
            out.append(replace(_finding(f"{which}: arnold.kfo-matches-linnet: LogR+KFO post-adaptation accuracy matches "
                                        f"or beats {MODELS[key][0]}", 0.0, m, se, "acc(KFO) - acc(LinNet) + 4 SE >= 0",
                                        m + 4 * se >= 0),
                                claim="arnold.kfo-matches-linnet"))
    return out


EXPERIMENT = Experiment(
    name="arnold_logistic",
    paper="Arnold et al. 2021",
    figure="Fig. 1 (classification)",
    claim="With MAML at a small fixed inner step, LogR barely adapts while LogR with extra linear layers "
          "(same capacity) or with a KFO meta-optimizer does.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
