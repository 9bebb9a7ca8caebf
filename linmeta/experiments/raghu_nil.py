"""Raghu et al. (2020), Table 4 analogue: NIL (no inner loop, a label vote on penultimate features).

Networks are meta-trained with ANIL and with MAML on the low-rank family (a shared representation
exists).  At test time, on the same tasks, support sets and query points:

* **MAML**: every layer adapts (one step); **ANIL**: the head adapts (one step);
* **NIL-cos** (Raghu et al.): drop the ANIL-trained head and predict
  ``ŷ(x_q) = λ (1/K) Σ_j y_j cos(φ_q, φ_j)`` with penultimate features ``φ``.  A cosine vote has no
  scale, which argmax-based classification ignores but a squared loss does not, so one global
  ``λ`` is fitted by least squares on separate calibration tasks;
* **NIL-dot**: ``ŷ(x_q) = (α/K) Σ_j y_j ⟨φ_q, φ_j⟩``, which *is* one ANIL step from a zero head
  (the exact link, :func:`linmeta.theory.anil.zero_head_vote`, ``derivations/anil_vote.py``).

Scores: the query squared loss (½(y − ŷ)², averaged) and the scale-free sign accuracy
``P(sign ŷ = sign w*ᵀx_q)`` (the classification analogue).  Theory: the expected ANIL and NIL-dot
losses are exact closed forms (:func:`linmeta.theory.anil.anil_expected_task_loss`, with the head
set to zero for NIL-dot), checked against the Monte Carlo; and the engine's zero-head ANIL step is
checked to equal the dot-product vote to round-off on the trained bodies.
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop, adapted_map
from .. import as_generator
from ..theory import anil
from . import plotting
from .base import Check, Experiment, Param, close_se, small
from .. import to_numpy
from ..sim.families import representation_family
from ..sim.stats import crossed_difference_se
from ..sim.training import train_two_phase

METHODS = ("MAML", "ANIL", "NIL-dot", "NIL-cos")

PARAMS = {
    "d": Param(int, 10, 16, low=2, high=200, help="input dimension"),
    "k": Param(int, 2, 3, low=1, high=50, help="rank of B*"),
    "widths": Param("ints", (10, 10), (16, 16), low=1, high=10000, help="hidden widths (depth = len + 1)"),
    "K": Param(int, 5, 5, low=1, high=1000, help="support shots"),
    "alpha": Param(float, 0.1, 0.1, low=1e-4, high=2.0, help="inner step size"),
    "noise": Param(float, 0.2, 0.2, low=0.0, high=100.0, help="label noise σ"),
    "steps": Param(int, 500, 4000, low=1, high=1_000_000, help="outer steps (then steps/2 more at lr/10)"),
    "lr": Param(float, 0.01, 0.003, low=1e-6, high=1.0, help="Adam learning rate"),
    "tasks_per_step": Param(int, 16, 32, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent trainings (run axis)"),
    "eval_tasks": Param(int, 2000, 5000, low=10, high=1_000_000, help="test tasks"),
    "calib_tasks": Param(int, 500, 2000, low=10, high=1_000_000, help="calibration tasks for the NIL-cos scale"),
    "query": Param(int, 20, 20, low=1, high=10000, help="query points per test task"),
}


def _train(item, backend=None):
    cfg, method = item["cfg"], item["method"]
    fam = representation_family("low_rank", cfg["d"], cfg["k"], cfg["noise"], seed=cfg["seed"])
    rule = InnerLoop(1, cfg["alpha"], "all" if method == "MAML" else "last")
    params = train_two_phase(fam, cfg["widths"], rule, steps=cfg["steps"], lr=cfg["lr"], K=cfg["K"],
                        tasks_per_step=cfg["tasks_per_step"], seeds=cfg["seeds"],
                        seed=[cfg["seed"], 401, METHODS.index(method)], init_seed=[cfg["seed"], 402],
                        backend=backend)
    params = tuple(to_numpy(W) for W in params)  # trained on the backend; evaluated on the host
    return {str(i): W for i, W in enumerate(params)}


def _data(fam, n_tasks, K, Q, rng):
    tasks = fam.sample_tasks(n_tasks, rng)
    Xs, Ys = tasks.sample_data(K, rng)
    Xq, Yq = tasks.sample_data(Q, rng)
    return tasks, Xs, Ys, Xq, Yq


def _predictions(params, maml_params, Xs, Ys, Xq, alpha, lam):
    """Query predictions (runs, T, Q) of every method."""
    from ..losses import sample_moments

    support = sample_moments(Xs, Ys)
    pred = {}
    for name, p, layers in (("MAML", maml_params, "all"), ("ANIL", params, "last")):
        M = adapted_map(p, support, InnerLoop(1, alpha, layers))  # (runs, T, 1, d)
        pred[name] = (Xq @ np.swapaxes(M, -1, -2))[..., 0]
    Fs, Fq = anil.body_features([W[:, None] for W in params], Xs), anil.body_features([W[:, None] for W in params], Xq)
    pred["NIL-dot"] = anil.zero_head_vote(Fs, Ys, Fq, alpha)[..., 0]
    cos = anil.cosine_vote(Fs, Ys, Fq)[..., 0]
    pred["NIL-cos"] = cos if lam is None else lam[:, None, None] * cos
    return pred


def run(cfg, ctx):
    trained = ctx.map(_train, [{"cfg": cfg, "method": m} for m in ("ANIL", "MAML")], desc="raghu_nil")
    P = {m: tuple(t[str(i)] for i in range(len(t))) for m, t in zip(("ANIL", "MAML"), trained)}
    fam = representation_family("low_rank", cfg["d"], cfg["k"], cfg["noise"], seed=cfg["seed"])
    alpha, K, Q = cfg["alpha"], cfg["K"], cfg["query"]
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 403]))
    # the NIL-cos scale: least squares of the calibration labels on the cosine vote, per seed
    _, Xs, Ys, Xq, Yq = _data(fam, cfg["calib_tasks"], K, Q, rng)
    v = _predictions(P["ANIL"], P["MAML"], Xs, Ys, Xq, alpha, None)["NIL-cos"]
    lam = np.sum(v * Yq[..., 0], axis=(-2, -1)) / np.sum(v * v, axis=(-2, -1))
    tasks, Xs, Ys, Xq, Yq = _data(fam, cfg["eval_tasks"], K, Q, rng)
    pred = _predictions(P["ANIL"], P["MAML"], Xs, Ys, Xq, alpha, lam)
    y, y_clean = Yq[..., 0], (Xq @ np.swapaxes(tasks.w_star, -1, -2))[..., 0]
    res = {"lambda": lam}
    for m in METHODS:
        loss = 0.5 * np.mean((pred[m] - y) ** 2, axis=-1)  # (runs, T)
        acc = np.mean(np.sign(pred[m]) == np.sign(y_clean), axis=-1)
        res[m] = {"mc": loss.mean(-1), "mc_task_mean": loss.mean(0),
                  "acc": {"mc": acc.mean(-1), "mc_task_mean": acc.mean(0)}}
    # theory: exact expected query loss of ANIL and of NIL-dot (= ANIL from a zero head), per task
    zero = P["ANIL"][:-1] + (np.zeros_like(P["ANIL"][-1]),)
    for m, p in (("ANIL", P["ANIL"]), ("NIL-dot", zero)):
        closed = anil.anil_expected_task_loss(p, tasks, K, alpha)  # (runs, T)
        loss = 0.5 * np.mean((pred[m] - y) ** 2, axis=-1)
        diff = (loss - closed).mean(0)
        res[m]["closed"] = anil.anil_expected_loss(p, fam, K, alpha)
        res[m]["cond_closed"] = closed.mean()  # the closed form averaged over the drawn tasks
        res[m]["cond_diff"], res[m]["cond_diff_se"] = diff.mean(), diff.std(ddof=1) / np.sqrt(diff.size)
    # the exact link on the trained bodies: engine's zero-head ANIL step vs the vote
    from ..losses import sample_moments

    M0 = adapted_map(zero, sample_moments(Xs[:50], Ys[:50]), InnerLoop(1, alpha, "last"))
    engine = (Xq[:50] @ np.swapaxes(M0, -1, -2))[..., 0]
    res["link_rel_err"] = np.max(np.abs(engine - pred["NIL-dot"][:, :50])) / np.max(np.abs(engine))
    return res


@plotting.styled
def plot(res, cfg):
    fig, axes = plotting.figure(2, width="text", height=2.6)
    for ax, (key, label) in zip(axes, (("loss", "query loss $\\frac{1}{2}(y-\\hat y)^2$"), ("acc", "sign accuracy"))):
        for i, m in enumerate(METHODS):
            r = res[m] if key == "loss" else res[m]["acc"]
            mean, se = crossed_difference_se(r)
            ax.bar(i, mean, color=plotting.COLORS[i], alpha=0.7, width=0.7)
            ax.errorbar(i, mean, yerr=2 * se, color="k", capsize=2, elinewidth=0.8,
                        label="mean $\\pm$2 SE" if i == 0 else None)
            ax.plot(i + np.linspace(-0.2, 0.2, len(r["mc"])), r["mc"], "k.", ms=2.5,
                    label="one seed (Monte Carlo)" if i == 0 else None)
            if key == "loss" and "closed" in res[m]:
                ax.plot([i - 0.35, i + 0.35], [np.mean(res[m]["closed"])] * 2, "--", color=plotting.COLORS[1], lw=1.2,
                        label="closed form" if m == "ANIL" else None)
        ax.set_xticks(range(len(METHODS)), METHODS)
        ax.set_ylabel(label)
        if key == "acc":
            ax.set_ylim(0.5, 1.0)
    plotting.label_panels(axes)
    plotting.figlegend(fig, axes[:1])
    return plotting.finish(fig, f"Raghu et al. Table 4 in deep linear nets: NIL vs ANIL vs MAML "
                                f"(low-rank tasks, $K={cfg['K']}$; $\\pm$2 SE)")


def checks(res, cfg):
    out = [small("exact link: zero-head ANIL step = dot-product vote (max rel. err.)", res["link_rel_err"], 1e-10,
                 claim="raghu.nil-is-zero-head-anil")]
    for m in ("ANIL", "NIL-dot"):
        c = float(res[m]["cond_closed"])
        out.append(close_se(f"{m}: Monte Carlo query loss = closed form on the same test tasks", c,
                            c + float(res[m]["cond_diff"]), float(res[m]["cond_diff_se"]),
                            claim="raghu.anil-closed-form"))
    for m in ("NIL-cos", "NIL-dot"):
        md, sd = crossed_difference_se(res[m], res["ANIL"])
        out.append(Check(f"{m} − ANIL query loss <= 4 SE (Raghu Table 4: NIL ~ ANIL)", 0.0, md, sd, "diff <= 4 SE",
                         bool(md <= 4 * sd), claim="raghu.nil-matches-anil"))
        md, sd = crossed_difference_se(res["ANIL"]["acc"], res[m]["acc"])
        out.append(Check(f"ANIL − {m} sign accuracy <= 4 SE (Raghu Table 4: NIL ~ ANIL)", 0.0, md, sd,
                         "diff <= 4 SE", bool(md <= 4 * sd), claim="raghu.nil-matches-anil"))
    md, sd = crossed_difference_se(res["ANIL"], res["MAML"])
    out.append(Check("ANIL − MAML query loss <= 4 SE (Raghu Table 4)", 0.0, md, sd, "diff <= 4 SE", bool(md <= 4 * sd),
                     claim="raghu.anil-matches-maml"))
    return out


EXPERIMENT = Experiment(
    name="raghu_nil",
    paper="Raghu et al. 2020",
    figure="Table 4",
    claim="Removing the head and voting with cosine similarities of penultimate features (NIL) matches ANIL and MAML.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
