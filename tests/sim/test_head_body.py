"""The engine-evaluated head/body split (linmeta.sim.head_body)."""
import numpy as np
import pytest

from linmeta import end_to_end, init_deep_linear, sample_moments
from linmeta.sim.head_body import head_body_split
from linmeta.theory import anil

from ..helpers import central_diff_grad


def test_split_first_order_terms_are_the_alpha_derivative():
    # gradient check in α: d/dα of each exact reduction at α = 0 vs the first-order (preconditioner) parts
    rng = np.random.default_rng(7)
    d, T = 4, 3
    params = init_deep_linear(d, (3, 5), 2, rng=rng)
    sup = sample_moments(rng.standard_normal((T, 6, d)), rng.standard_normal((T, 6, 2)))
    qry = sample_moments(rng.standard_normal((T, 9, d)), rng.standard_normal((T, 9, 2)))
    lin = head_body_split(params, sup, qry, 1.0)
    for t in range(T):
        for name, ref in (("head", lin.head_linear[t]), ("body", lin.body_linear[t]),
                          ("total", lin.head_linear[t] + lin.body_linear[t])):
            g = central_diff_grad(lambda a: getattr(head_body_split(params, sup, qry, float(a[0])), name)[t],
                                  np.array([0.0]), h=1e-3)[0]
            assert abs(g - ref) <= 1e-8 * max(1.0, abs(ref))
    s = head_body_split(params, sup, qry, 0.2)
    assert np.max(np.abs(s.total - s.head - s.body - s.interaction)) <= 1e-15 * np.max(np.abs(s.total))
    # the head's first-order part is ANIL's preconditioner ⟨G_q, G_s P_LᵀP_L⟩
    M = end_to_end(params)[None]
    R = anil.top_only_factor(params)
    assert np.allclose(lin.head_linear, np.sum(qry.grad(M) * (sup.grad(M) @ R), axis=(-2, -1)), rtol=1e-12)




def test_needs_a_body():
    with pytest.raises(ValueError, match="at least 2 layers"):
        head_body_split(init_deep_linear(3, (), 1, rng=0), None, None, 0.1)
