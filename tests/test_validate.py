"""Input validation helpers (linmeta._validate)."""
import numpy as np
import pytest

from linmeta import _validate


def test_positive_int():
    assert _validate.positive_int("n", 3) == 3
    assert _validate.positive_int("n", 0, allow_zero=True) == 0
    for bad, msg in ((0, "positive"), (-1, "positive"), (2.0, "integer"), (True, "integer"), ("3", "integer")):
        with pytest.raises(ValueError, match=f"n must be .*{msg}"):
            _validate.positive_int("n", bad)


def test_finite_float():
    assert _validate.finite_float("a", 1) == 1.0
    with pytest.raises(ValueError, match="a must be finite"):
        _validate.finite_float("a", float("inf"))
    with pytest.raises(ValueError, match="a must be positive"):
        _validate.finite_float("a", 0.0, positive=True)
    with pytest.raises(ValueError, match="a must be non-negative"):
        _validate.finite_float("a", -1.0, non_negative=True)


def test_psd_matrix_messages_name_the_fix():
    with pytest.raises(ValueError, match="square"):
        _validate.psd_matrix("S", np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(C \+ C.T\) / 2"):
        _validate.psd_matrix("S", np.array([[1.0, 0.3], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="L @ L.T"):
        _validate.psd_matrix("S", np.diag([1.0, -0.5]))
    assert _validate.psd_matrix("S", np.zeros((2, 2))).shape == (2, 2)  # PSD, singular: fine


def test_finite_array_counts_bad_entries():
    with pytest.raises(ValueError, match="X contains 2 non-finite"):
        _validate.finite_array("X", np.array([1.0, np.nan, np.inf]))


def test_one_of():
    with pytest.raises(ValueError, match="mode must be one of"):
        _validate.one_of("mode", "x", ("a", "b"))


def test_matrix_pair_names_the_argument_and_the_shared_axis():
    a, b = _validate.matrix_pair(("A", "B"), [[1, 2], [3, 4]], np.ones((5, 2, 3)), shape="(..., n, k)", shared="rows n")
    assert a.dtype == float and a.shape == (2, 2) and b.shape == (5, 2, 3)
    with pytest.raises(ValueError, match=r"A must have shape \(\.\.\., n, k\)"):
        _validate.matrix_pair(("A", "B"), np.ones(3), np.ones((3, 1)), shape="(..., n, k)", shared="rows n")
    with pytest.raises(ValueError, match="B contains 1 non-finite"):
        _validate.matrix_pair(("A", "B"), np.ones((3, 1)), np.array([[1.0], [np.nan], [0.0]]), shape="(n, k)", shared="rows")
    with pytest.raises(ValueError, match="A and B must have the same number of rows n"):
        _validate.matrix_pair(("A", "B"), np.ones((3, 1)), np.ones((4, 1)), shape="(n, k)", shared="rows n")
