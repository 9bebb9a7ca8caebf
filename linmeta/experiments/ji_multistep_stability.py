"""Ji, Yang & Liang (JMLR 2022): the inner step of N-step MAML must shrink like 1/N.

Quadratic tasks ``f_i(w) = ½(w − w_i)ᵀH_i(w − w_i)``; the meta-objective after N population inner
steps of size α has the Hessian ``H_meta = Σ p_i (I − αH_i)^N H_i (I − αH_i)^N`` and outer gradient
descent with rate β converges iff its spectrum lies in ``(0, 2/β)``
(:mod:`linmeta.theory.multistep_stability`).  Three task sets, each of two or three tasks:

* **non-convex** (co-diagonal, d = 2): along e₁ the curvatures are ``λ₊ > 0`` and ``λ₋ < 0``; the
  boundary is the zero crossing ``α_c(N) = (ρ − 1)/(ρλ₊ + |λ₋|)``, ``ρ = R^{1/(2N)}``, so
  ``N α_c → ½ ln R / (λ₊ − λ₋)``: the 1/N law;
* **convex**: the same with ``λ₋`` replaced by ``|λ₋|``; the boundary tends to ``2/Λ``, no 1/N;
* **rotated** (d = 3, three non-commuting indefinite ``H_i`` with a seeded random eigenbasis each):
  the boundary from the general root finder, ``N α_c → s*`` from ``Σ p e^{−sH}He^{−sH}``.

Simulation: the engine's outer loop (:mod:`linmeta.sim.stability_sweep`) with the α grid on the run
axis; divergence is read from the measured growth rate; the first stable → unstable transition is
bracketed by bisection from a coarse scan (no theory input), and its bracket half-width is the
tolerance of the comparison with the closed form.  ``linmeta.meta_train`` (optimizer ``"sgd"``, real
optima) confirms the verdict on both sides of the bracket with its own ``DivergenceError``.
"""
from __future__ import annotations

import numpy as np

import linmeta as lm
from linmeta.experiments import plotting
from linmeta.experiments.base import Check, Experiment, Param, finding, holds, small
from linmeta.sim import stability_sweep as SS
from linmeta.theory import multistep_stability as MS

SETTINGS = ("nonconvex", "convex", "rotated")

PARAMS = {
    "lam_pos": Param(float, 1.0, 1.0, low=1e-3, high=10.0, help="positive task curvature λ₊ along e₁"),
    "lam_neg": Param(float, -0.25, -0.25, low=-10.0, high=-1e-3, help="negative task curvature λ₋ along e₁"),
    "p_pos": Param(float, 0.5, 0.5, low=0.05, high=0.95, help="weight of the λ₊ task"),
    "lam_second": Param("floats", (0.6, 0.3), (0.6, 0.3), low=1e-3, high=10.0,
                        help="the two tasks' curvatures along e₂ (positive)"),
    "rotated_eigs": Param("floats", (1.0, 0.6, 0.3, 0.8, 0.5, -0.15, 0.9, 0.4, -0.1),
                          (1.0, 0.6, 0.3, 0.8, 0.5, -0.15, 0.9, 0.4, -0.1), low=-10.0, high=10.0,
                          help="eigenvalues of the three rotated tasks (3 x 3, row-major)"),
    "beta": Param(float, 1.0, 1.0, low=1e-3, high=10.0, help="outer learning rate β"),
    "Ns": Param("ints", (1, 2, 4, 8, 16), (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128), low=1, high=512,
                help="inner step counts N"),
    "alpha_lo": Param(float, 1e-3, 1e-3, low=1e-8, help="smallest α of the coarse scan", high=0.1),
    "alpha_hi": Param(float, 5.0, 5.0, low=1e-3, help="largest α of the coarse scan", high=1000),
    "points": Param(int, 16, 20, low=2, high=256, help="α values per scan / bisection round (run axis)"),
    "rounds": Param(int, 3, 4, low=0, high=10, help="bisection rounds after the coarse scan"),
    "outer_steps": Param(int, 150, 200, low=10, help="outer GD steps per growth-rate measurement", high=100000),
    "tail": Param(int, 40, 60, low=1, help="final steps whose mean growth gives the rate", high=10000),
    "rate_N": Param(int, 8, 8, low=1, help="N of the growth-rate panel", high=1000),
    "rate_points": Param(int, 24, 48, low=2, help="α values of the growth-rate panel", high=10000),
    "check_Ns": Param("ints", (2, 8), (2, 8, 32), low=1, help="N values of the meta_train DivergenceError check", high=10000),
    "check_steps": Param(int, 3000, 6000, low=10, help="outer steps of the meta_train check", high=1000000),
    "beta_small": Param(float, 0.25, 0.25, low=1e-4, help="a second β for the β-independence check", high=100),
    "spread_p": Param("floats", (0.8, 0.2), (0.8, 0.2, 0.65), low=0.05, high=0.95,
                      help="weights p₊ of spectra with the same R as the main one (spread panel)"),
    "spread_sim": Param(bool, False, True, help="simulate the boundaries of the spread-panel spectra too"),
}


# --------------------------------------------------------------------------- task sets


def hessians(cfg, setting):
    """``(H (T, d, d), weights (T,))`` of a task set."""
    a, b = cfg["lam_second"]
    p = cfg["p_pos"]
    if setting == "nonconvex":
        return np.array([np.diag([cfg["lam_pos"], a]), np.diag([cfg["lam_neg"], b])]), np.array([p, 1 - p])
    if setting == "convex":
        return np.array([np.diag([cfg["lam_pos"], a]), np.diag([-cfg["lam_neg"], b])]), np.array([p, 1 - p])
    if setting == "rotated":
        eigs = np.asarray(cfg["rotated_eigs"], dtype=float).reshape(3, 3)
        rng = lm.as_generator(np.random.SeedSequence([cfg["seed"], 1401]))
        out = []
        for e in eigs:
            Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
            out.append(Q @ np.diag(e) @ Q.T)
        return 0.5 * (np.array(out) + np.swapaxes(np.array(out), -1, -2)), np.full(3, 1.0 / 3)
    if setting.startswith("spread"):
        # same R = p₊λ₊/(p₋|λ₋|) as the main spectrum, another weight p₊: λ₋ follows
        p2 = cfg["spread_p"][int(setting[6:])]
        R = p * cfg["lam_pos"] / ((1 - p) * -cfg["lam_neg"])
        lneg = -p2 * cfg["lam_pos"] / ((1 - p2) * R)
        return np.array([np.diag([cfg["lam_pos"], a]), np.diag([lneg, b])]), np.array([p2, 1 - p2])
    raise ValueError(f"unknown setting {setting!r}")


def _theory_boundary(cfg, setting, N, beta=None):
    H, p = hessians(cfg, setting)
    return MS.critical_alpha(H, N, cfg["beta"] if beta is None else beta, cfg["alpha_hi"], p)


def _optima(cfg, d, T):
    rng = lm.as_generator(np.random.SeedSequence([cfg["seed"], 1403]))
    return rng.standard_normal((T, d))


# --------------------------------------------------------------------------- pieces


def _boundary_piece(item):
    cfg, setting, N = item["cfg"], item["setting"], item["N"]
    beta = item.get("beta", cfg["beta"])
    H, p = hessians(cfg, setting)
    r = SS.locate_boundary(H, N, beta, cfg["alpha_lo"], cfg["alpha_hi"], weights=p, points=cfg["points"],
                           rounds=cfg["rounds"], outer_steps=cfg["outer_steps"], tail=cfg["tail"], seed=cfg["seed"])
    return {"lo": r["lo"], "hi": r["hi"], "found": r["found"], "engine_runs": r["engine_runs"]}


def _rate_piece(item):
    cfg = item["cfg"]
    H, p = hessians(cfg, "nonconvex")
    a = np.geomspace(cfg["alpha_lo"] * 10, 1.0, cfg["rate_points"])
    rate = SS.outer_growth(H, a, cfg["rate_N"], cfg["beta"], weights=p, outer_steps=cfg["outer_steps"],
                           tail=cfg["tail"], seed=cfg["seed"])
    return {"alpha": a, "rate": rate}


def _hessian_piece(item):
    cfg, setting = item["cfg"], item["setting"]
    H, p = hessians(cfg, setting)
    out = {}
    for N in (1, 3, 8):
        alpha = 0.5 * _theory_boundary(cfg, setting, N)
        eng = SS.engine_meta_hessian(H, alpha, N, p)
        th = MS.meta_hessian(H, alpha, N, p)
        out[f"N{N}"] = float(np.max(np.abs(eng - th)) / np.max(np.abs(th)))
    return out


def _meta_train_piece(item):
    cfg, N, lo, hi = item["cfg"], item["N"], item["lo"], item["hi"]
    H, p = hessians(cfg, "nonconvex")
    w = _optima(cfg, H.shape[-1], H.shape[0])
    below = SS.meta_train_outcome(H, w, 0.8 * lo, N, cfg["beta"], weights=p, outer_steps=cfg["check_steps"],
                                  seed=cfg["seed"])
    above = SS.meta_train_outcome(H, w, 1.25 * hi, N, cfg["beta"], weights=p, outer_steps=cfg["check_steps"],
                                  seed=cfg["seed"])
    return {"below_diverged": below["diverged"], "above_diverged": above["diverged"], "above_step": above["step"]}


def _settings(cfg):
    return list(SETTINGS) + [f"spread{i}" for i in range(len(cfg["spread_p"]))]


def run(cfg, ctx):
    Ns = list(cfg["Ns"])
    sim_settings = list(SETTINGS) + ([f"spread{i}" for i in range(len(cfg["spread_p"]))] if cfg["spread_sim"] else [])
    items = [{"cfg": cfg, "setting": s, "N": N} for s in sim_settings for N in Ns]
    # β-independence of the non-convex boundary, at the middle N
    n_mid = Ns[len(Ns) // 2]
    items.append({"cfg": cfg, "setting": "nonconvex", "N": n_mid, "beta": cfg["beta_small"]})
    pieces = ctx.map(_boundary_piece, items, desc="ji_multistep_stability boundaries")
    res = {"Ns": np.array(Ns), "sim_settings": np.array(sim_settings)}
    for s in _settings(cfg):
        H, p = hessians(cfg, s)
        th = np.array([_theory_boundary(cfg, s, N) for N in Ns])
        entry = {"theory": th, "lam_max": float(np.linalg.eigvalsh(H).max()),
                 "lam_min": float(np.linalg.eigvalsh(H).min()),
                 "limit": MS.scaling_limit(H, p), "convex_limit": MS.convex_limit(H)}
        if s in sim_settings:
            got = [pc for it, pc in zip(items, pieces) if it["setting"] == s and "beta" not in it]
            entry["lo"] = np.array([g["lo"] for g in got])
            entry["hi"] = np.array([g["hi"] for g in got])
            entry["found"] = np.array([g["found"] for g in got])
            entry["engine_runs"] = int(sum(g["engine_runs"] for g in got))
        res[s] = entry
    if cfg["lam_neg"] < 0:
        res["nonconvex"]["two_point"] = np.array([MS.two_point_boundary(cfg["lam_pos"], cfg["lam_neg"], cfg["p_pos"], N)
                                                  for N in Ns])
        res["nonconvex"]["two_point_limit"] = MS.two_point_limit(cfg["lam_pos"], cfg["lam_neg"], cfg["p_pos"])
    bp = pieces[-1]
    res["beta_check"] = {"N": n_mid, "lo": bp["lo"], "hi": bp["hi"],
                         "theory": _theory_boundary(cfg, "nonconvex", n_mid, cfg["beta_small"])}
    # the region (theory) on a grid, for the figure
    n_grid = np.arange(1, max(Ns) + 1)
    a_grid = np.geomspace(cfg["alpha_lo"], cfg["alpha_hi"], 240)
    for s in ("nonconvex", "convex"):
        H, p = hessians(cfg, s)
        res[s]["region"] = np.array([MS.stability_margin(H, a_grid, N, cfg["beta"], p) for N in n_grid]) > 0
    res["region_N"], res["region_alpha"] = n_grid, a_grid
    rp = ctx.map(_rate_piece, [{"cfg": cfg}], desc="ji_multistep_stability rates")[0]
    Hn, pn = hessians(cfg, "nonconvex")
    res["rate"] = {"alpha": rp["alpha"], "sim": rp["rate"],
                   "theory": MS.outer_rate(Hn, rp["alpha"], cfg["rate_N"], cfg["beta"], pn),
                   "fine_alpha": np.geomspace(rp["alpha"][0], rp["alpha"][-1], 400)}
    res["rate"]["fine"] = MS.outer_rate(Hn, res["rate"]["fine_alpha"], cfg["rate_N"], cfg["beta"], pn)
    mu = np.abs(1.0 - cfg["beta"] * MS.meta_spectrum(Hn, rp["alpha"], cfg["rate_N"], pn))
    mu.sort(axis=-1)
    res["rate"]["gap"] = mu[:, -2] / mu[:, -1]
    hp = ctx.map(_hessian_piece, [{"cfg": cfg, "setting": s} for s in SETTINGS], desc="ji_multistep_stability Hessians")
    res["engine_hessian"] = {s: h for s, h in zip(SETTINGS, hp)}
    nc = res["nonconvex"]
    mt_items = [{"cfg": cfg, "N": N, "lo": float(nc["lo"][Ns.index(N)]), "hi": float(nc["hi"][Ns.index(N)])}
                for N in cfg["check_Ns"] if N in Ns and nc["found"][Ns.index(N)]]
    mt = ctx.map(_meta_train_piece, mt_items, desc="ji_multistep_stability meta_train")
    res["meta_train"] = {"N": np.array([it["N"] for it in mt_items], dtype=int),
                         "below_diverged": np.array([m["below_diverged"] for m in mt], dtype=bool),
                         "above_diverged": np.array([m["above_diverged"] for m in mt], dtype=bool),
                         "above_step": np.array([m["above_step"] for m in mt], dtype=int)}
    return res


# --------------------------------------------------------------------------- figure


def _mid(r):
    return 0.5 * (r["lo"] + r["hi"]), 0.5 * (r["hi"] - r["lo"])


def _shade(color):
    from matplotlib.colors import ListedColormap, to_rgba

    return ListedColormap([(1, 1, 1, 0), to_rgba(color, 0.2)])


@plotting.styled
def plot(res, cfg):
    from matplotlib.patches import Patch

    fig, axes = plotting.figure(3, 2, width="text", height=6.0)
    C = plotting.COLORS
    Ns = res["Ns"]
    nN, aN = res["region_N"], res["region_alpha"]
    lp, ln = cfg["lam_pos"], cfg["lam_neg"]
    titles = {"nonconvex": f"non-convex: $\\lambda \\in \\{{{lp:g}, {ln:g}\\}}$, $\\beta = {cfg['beta']:g}$",
              "convex": f"convex: $\\lambda \\in \\{{{lp:g}, {-ln:g}\\}}$, $\\beta = {cfg['beta']:g}$"}
    for ax, s, col in zip(axes[:2], ("nonconvex", "convex"), (C[0], C[1])):
        r = res[s]
        edges = np.r_[nN - 0.5, nN[-1] + 0.5]
        ax.pcolormesh(np.maximum(edges, 0.75), aN, r["region"].T[:-1, :].astype(float), cmap=_shade(col), vmin=0,
                      vmax=1, shading="flat", rasterized=True)
        ax.plot(Ns, r["theory"], "-", color=col, lw=1.5, label=r"closed form $\alpha_c(N)$")
        m, h = _mid(r)
        plotting.errorbars(ax, Ns, m, h, color="k", ms=3, label="engine: bisection bracket")
        if s == "nonconvex":
            ax.plot(Ns, r["limit"] / Ns, "--", color="0.3", lw=1, label=f"$s^*/N$, $s^* = {r['limit']:.3f}$")
        else:
            ax.axhline(r["convex_limit"], ls="--", color="0.3", lw=1, label=f"$2/\\Lambda = {r['convex_limit']:.3g}$")
        ax.set(xscale="log", yscale="log", xlabel="inner steps $N$", ylabel=r"inner step $\alpha$", title=titles[s])
        plotting.legend_below(fig, [ax], ncol=1,
                              extra=[Patch(color=col, alpha=0.2, lw=0, label="outer GD converges (closed form)")])
    ax = axes[2]
    for s, col, lab in (("nonconvex", C[0], "non-convex"), ("rotated", C[2], "rotated ($d = 3$)"),
                        ("convex", C[1], "convex")):
        r = res[s]
        ax.plot(Ns, Ns * r["theory"], "-", color=col, label=lab)
        m, h = _mid(r)
        plotting.errorbars(ax, Ns, Ns * m, Ns * h, color=col, ms=3)
        if np.isfinite(r["limit"]):
            ax.axhline(r["limit"], color=col, ls="--", lw=0.8)
    ax.plot(Ns, Ns * res["convex"]["convex_limit"], ":", color=C[1], lw=1, label=r"convex: $2N/\Lambda$")
    ax.set(xscale="log", yscale="log", xlabel="inner steps $N$", ylabel=r"$N\,\alpha_c(N)$",
           title=r"$N\alpha_c$: flat iff non-convex")
    plotting.legend_below(fig, [ax], ncol=2, extra=[plotting.handle("closed form"),
                                                    plotting.handle("engine", ls="none", marker="o"),
                                                    plotting.handle(r"limit $s^*$", ls="--", lw=0.8)])
    ax = axes[3]
    rr = res["rate"]
    ax.plot(rr["fine_alpha"], rr["fine"], "-", color=C[0], label=r"closed form $\max_j|1 - \beta\mu_j|$")
    ax.plot(rr["alpha"], rr["sim"], "o", ms=3, color="k", label="engine: growth per outer step")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvline(res["nonconvex"]["theory"][list(Ns).index(cfg["rate_N"])] if cfg["rate_N"] in list(Ns) else np.nan,
               color=C[3], ls=":", label=r"$\alpha_c$ (closed form)")
    ax.set(xscale="log", xlabel=r"inner step $\alpha$", ylabel=r"outer contraction $\rho$",
           title=f"non-convex, $N = {cfg['rate_N']}$: $\\rho = 1$ at $\\alpha_c$")
    plotting.legend_below(fig, [ax], ncol=1)
    ax = axes[4]
    spreads = [k for k in res if isinstance(k, str) and k.startswith("spread")]
    R = cfg["p_pos"] * cfg["lam_pos"] / ((1 - cfg["p_pos"]) * -cfg["lam_neg"])
    for i, s in enumerate(["nonconvex"] + spreads):
        r = res[s]
        spread = r["lam_max"] - r["lam_min"]
        col = (C[4], C[5], C[3], C[2])[i % 4]
        pp = cfg["p_pos"] if s == "nonconvex" else cfg["spread_p"][int(s[6:])]
        ax.plot(Ns, Ns * r["theory"] * spread, "-", color=col, label=f"$p_+ = {pp:g}$, $\\lambda_- = {r['lam_min']:.3g}$")
        ax.plot(Ns, Ns * r["theory"] * r["lam_max"], ":", color=col)
        if "lo" in r:
            m, h = _mid(r)
            plotting.errorbars(ax, Ns, Ns * m * spread, Ns * h * spread, color=col, ms=3)
    ax.axhline(0.5 * np.log(R), color="k", ls="--", lw=0.8, label=f"$\\frac{{1}}{{2}}\\ln R = {0.5 * np.log(R):.3f}$")
    ax.set_ylim(0, None)
    ax.set(xscale="log", xlabel="inner steps $N$", ylabel="boundary constant",
           title=f"same $R = {R:.3g}$, other spreads")
    plotting.legend_below(fig, [ax], ncol=2, extra=[
        plotting.handle(r"$\alpha_c N(\lambda_+ - \lambda_-)$"), plotting.handle(r"$\alpha_c N \lambda_{\max}$", ls=":")])
    ax = axes[5]
    for s, col, lab in (("nonconvex", C[0], "non-convex"), ("convex", C[1], "convex"), ("rotated", C[2], "rotated")):
        r = res[s]
        m, h = _mid(r)
        ax.plot(Ns, np.abs(m - r["theory"]) / r["theory"], "o-", color=col, ms=3, label=lab)
        ax.plot(Ns, h / r["theory"], ":", color=col, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="inner steps $N$", ylabel="relative error",
           title="engine vs closed form")
    plotting.legend_below(fig, [ax], ncol=2, extra=[
        plotting.handle(r"$|\alpha_{\rm engine} - \alpha_c|/\alpha_c$", marker="o"),
        plotting.handle("bracket half-width", ls=":")])
    for ax in axes[[0, 1, 2, 4, 5]]:  # inner steps N on a log axis: tick the simulated N
        plotting.ticks_at(ax.xaxis, Ns)
    plotting.label_panels(axes)
    return plotting.finish(fig, "Ji, Yang & Liang: N-step MAML meta-training on quadratic tasks; the stable inner "
                                "step shrinks like 1/N only when some task has negative curvature")


# --------------------------------------------------------------------------- checks


def _slope(Ns, a):
    """Log-log slope of α_c between the two largest N."""
    return float(np.log(a[-1] / a[-2]) / np.log(Ns[-1] / Ns[-2]))


def checks(res, cfg):
    out = []
    Ns = res["Ns"]
    for s in [str(x) for x in res["sim_settings"]]:
        r = res[s]
        if not np.all(r["found"]):
            out.append(holds(f"{s}: the coarse scan found a stable-to-unstable transition at every N", False,
                             float(np.sum(r["found"])), float(len(Ns)), "all N", claim='ji.stability-region'))
            continue
        m, h = _mid(r)
        z = np.abs(m - r["theory"]) / h
        i = int(np.argmax(z))
        out.append(Check(f"{s}: simulated boundary (bisection bracket) = closed-form α_c(N) (worst of {len(Ns)} N, "
                         f"N = {Ns[i]})", r["theory"][i], m[i], h[i], "|diff| <= bracket half-width", bool(z[i] <= 1.0), claim='ji.stability-region'))
    nc = res["nonconvex"]
    if "two_point" in nc:
        out.append(small("non-convex: two-curvature closed form = general root finder (max rel. diff over N)",
                         np.max(np.abs(nc["two_point"] - nc["theory"]) / nc["theory"]), 1e-10, claim='ji.stability-region'))
    for s, h in res["engine_hessian"].items():
        out.append(small(f"{s}: engine meta-Hessian (second order through N unrolled steps) = "
                         "Σ p (I−αH)^N H (I−αH)^N (max rel. error, N = 1, 3, 8)", max(h.values()), 1e-10, claim='ji.stability-region'))
    rr = res["rate"]
    ok = rr["gap"] < 0.8
    if np.any(ok):
        err = np.abs(rr["sim"][ok] - rr["theory"][ok]) / rr["theory"][ok]
        out.append(small(f"non-convex N = {cfg['rate_N']}: measured outer growth = max|1 − βμ| (max rel. error over "
                         f"{int(ok.sum())} α with spectral gap < 0.8)", float(err.max()), 1e-6, claim='ji.stability-region'))
    bc = res["beta_check"]
    mid, half = 0.5 * (bc["lo"] + bc["hi"]), 0.5 * (bc["hi"] - bc["lo"])
    out.append(Check(f"non-convex N = {bc['N']}: boundary at β = {cfg['beta_small']:g} (simulated) = closed form at "
                     f"β = {cfg['beta']:g} (the zero crossing does not depend on β)",
                     nc["theory"][list(Ns).index(bc["N"])], mid, half, "|diff| <= bracket half-width",
                     bool(abs(mid - nc["theory"][list(Ns).index(bc["N"])]) <= half), claim='ji.stability-region'))
    mt = res["meta_train"]
    for N, below, above, step in zip(mt["N"], mt["below_diverged"], mt["above_diverged"], mt["above_step"]):
        out.append(holds(f"non-convex N = {N}: linmeta.meta_train (SGD, real optima) converges at 0.8·α_lo and raises "
                         f"DivergenceError at 1.25·α_hi (step {step})", (not below) and above,
                         float(above), 1.0, "DivergenceError only above", claim='ji.stability-region'))
    # findings: the scaling of the boundary
    if "lo" in nc and np.all(nc["found"]) and len(Ns) >= 2:
        m, _ = _mid(nc)
        sl = _slope(Ns, m)
        out.append(finding(f"Ji et al.: the stable inner step shrinks like 1/N with negative curvature (simulated log-log "
                           f"slope of α_c between N = {Ns[-2]} and {Ns[-1]}: {sl:.3f})", abs(sl + 1.0) < 0.1, sl, -1.0,
                           "|slope + 1| < 0.1", claim='ji.inner-step-shrinks-like-1-over-n'))
        c = Ns[-1] * m[-1] * (nc["lam_max"] - nc["lam_min"])
        ref = 0.5 * np.log(cfg["p_pos"] * cfg["lam_pos"] / ((1 - cfg["p_pos"]) * -cfg["lam_neg"]))
        out.append(finding(f"the boundary constant: α·N·(λ₊ − λ₋) at N = {Ns[-1]} (simulated) = {c:.4f} vs ½ ln R = "
                           f"{ref:.4f} (the N → ∞ limit; O(1/N) off at finite N)", abs(c - ref) <= 0.05 * ref, c, ref,
                           "within 5%", claim='ji.inner-step-shrinks-like-1-over-n'))
        rot = res["rotated"]
        if np.all(rot["found"]):
            mr, _ = _mid(rot)
            out.append(finding(f"rotated (non-commuting) tasks: N·α_c at N = {Ns[-1]} (simulated) = {Ns[-1] * mr[-1]:.4f} "
                               f"vs s* = {rot['limit']:.4f}", abs(Ns[-1] * mr[-1] - rot["limit"]) <= 0.05 * rot["limit"],
                               Ns[-1] * mr[-1], rot["limit"], "within 5%", claim='ji.inner-step-shrinks-like-1-over-n'))
    cv = res["convex"]
    if "lo" in cv and np.all(cv["found"]) and len(Ns) >= 2:
        m, _ = _mid(cv)
        sl = _slope(Ns, m)
        out.append(finding(f"research-note prediction α·N·λ_max ≈ const also for convex tasks: simulated slope of α_c "
                           f"{sl:.3f} (α_c·Λ = {m[-1] * cv['lam_max']:.4f} → 2 at N = {Ns[-1]})", abs(sl + 1.0) < 0.1,
                           sl, -1.0, "|slope + 1| < 0.1", claim='ji.convex-limit'))
    return out


EXPERIMENT = Experiment(
    name="ji_multistep_stability",
    paper="Ji, Yang & Liang 2022",
    figure="stability region of N-step MAML in (α, N) (linear-model analogue; not a figure of the paper)",
    claim="N-step MAML meta-training on quadratic tasks is stable iff spec Σp(I−αH)^N H(I−αH)^N ⊂ (0, 2/β); with "
          "negative task curvature the boundary is α_c ≈ s*/N (the 1/N law), with convex tasks it tends to 2/λ_max.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
