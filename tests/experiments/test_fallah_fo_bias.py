"""The FO-MAML bias experiment (linmeta.experiments.fallah_fo_bias)."""
import matplotlib.pyplot
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import fallah_fo_bias as ex
from linmeta.experiments import runner

from ..helpers import every_check_passes

TINY = {"h_list": (0.0, 0.5), "D_list": (0.0, 2.0), "alpha_list": (0.1, 0.3), "runs": 6, "burn": 40, "average": 120,
        "fb_iters": 600}


def test_settings_are_deduplicated_and_families_consistent():
    cfg = ex.EXPERIMENT.config("quick", TINY)
    specs, sweeps = ex._specs(cfg)
    assert len(specs) == len({tuple(sorted(s.items())) for s in specs})
    assert sweeps["h"][1] == sweeps["D"][1] == sweeps["alpha"][1]  # the base setting is trained once
    fam, (l1, l2) = ex.isotropic(cfg)
    assert np.isclose(l1 + l2, 2 * cfg["lam_mean"]) and np.isclose(np.ptp([c.mean[0, 0] for c in fam.components]), cfg["D"])


def test_experiment_runs_plots_and_every_check_passes(tmp_path):
    res, cfg, _ = runner.run("fallah_fo_bias", overrides=TINY, directory=tmp_path)
    assert res["h"]["maml"].shape == (2, 6, 2) and res["aniso"]["fo"].shape == (1, 6, 2)
    fig = ex.plot(res, cfg)
    assert isinstance(fig, Figure)
    matplotlib.pyplot.close(fig)
    checks = every_check_passes(ex, res, cfg)
    exact = [c for c in checks if c.name.startswith("exact")]
    assert len(exact) == 2 * len(ex.EXACT_CASES) and all(c.passed for c in exact)
    # deterministic: a piece recomputed from scratch is bit-identical to the one in the result
    specs, sweeps = ex._specs(cfg)
    i = sweeps["aniso"][0]
    a = ex._sgd_piece({"cfg": cfg, "spec": specs[i], "index": i})
    assert np.array_equal(a["maml"], res["aniso"]["maml"][0]) and np.array_equal(a["fo"], res["aniso"]["fo"][0])
