"""Planted-structure task families (linmeta.sim.families)."""
import numpy as np
import pytest

from linmeta.sim.families import low_rank_basis, representation_family


def test_low_rank_family_is_the_degenerate_gaussian():
    fam = representation_family("low_rank", 7, 3, 0.1, seed=2, head_var=(1.0, 0.5, 0.25))
    B = low_rank_basis(7, 3, 2)
    assert np.allclose(B.T @ B, np.eye(3), atol=1e-12)
    assert np.allclose(fam.cov, B @ np.diag([1.0, 0.5, 0.25]) @ B.T, atol=1e-12)
    w = fam.sample_tasks(50, np.random.default_rng(0)).w_star[:, 0]
    # every task lies in span(B*) (the PSD square root drops round-off eigenvalues of the singular covariance)
    assert np.allclose(w - w @ B @ B.T, 0, atol=1e-13)
    iso = representation_family("isotropic", 7, 3, 0.1, mean_norm=2.0)
    assert abs(np.linalg.norm(iso.mean) - 2.0) <= 1e-12 and np.isclose(np.trace(iso.cov), 3.0)
    with pytest.raises(ValueError, match="name must be one of"):
        representation_family("other", 3, 1, 0.1)
