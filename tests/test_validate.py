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


# ------------------------------------------------------------------------------------- the helpers of issue 13


def test_argument_type_error_is_both_a_type_and_a_value_error():
    err = _validate.ArgumentTypeError("x")
    assert isinstance(err, TypeError) and isinstance(err, ValueError)


def test_integer_refuses_bools_floats_and_strings_and_checks_bounds():
    assert _validate.integer("n", np.int64(3)) == 3 and type(_validate.integer("n", np.int64(3))) is int
    for bad in (True, np.bool_(False), 2.0, np.float64(2.0), "2", None, 2 + 0j):
        with pytest.raises(TypeError, match="^n must be an integer"):
            _validate.integer("n", bad)
    with pytest.raises(TypeError, match=r"pass 2 \(an int, not a float\)"):
        _validate.integer("n", 2.0)
    with pytest.raises(ValueError, match="^n must be a positive integer, got 0"):
        _validate.integer("n", 0, low=1)
    with pytest.raises(ValueError, match="^n must be an integer >= 3"):
        _validate.integer("n", 2, low=3)
    with pytest.raises(ValueError, match="^n must be an integer <= 5"):
        _validate.integer("n", 6, high=5)
    with pytest.raises(ValueError, match="^n must be an integer <= 5"):
        _validate.positive_int("n", 6, high=5)


def test_optional_int_says_what_none_means():
    assert _validate.optional_int("K", None) is None and _validate.optional_int("K", 4) == 4
    with pytest.raises(ValueError, match=r"^K must be a positive integer or None \(the population\), got 0"):
        _validate.optional_int("K", 0, none="the population")
    with pytest.raises(TypeError, match="^K must be a positive integer or None"):
        _validate.optional_int("K", 2.5)


def test_real_refuses_bools_complex_strings_and_checks_ranges():
    assert _validate.real("a", np.float32(0.5)) == 0.5 and _validate.real("a", 3) == 3.0
    for bad in (True, "1", None, [1.0]):
        with pytest.raises(TypeError, match="^a must be a real number"):
            _validate.real("a", bad)
    with pytest.raises(TypeError, match="complex values are not accepted"):
        _validate.real("a", 1j)
    with pytest.raises(ValueError, match="^a must be <= 1"):
        _validate.real("a", 2.0, high=1.0)
    with pytest.raises(ValueError, match="^a must be > 0"):
        _validate.real("a", 0.0, low=0.0, open_low=True)
    with pytest.raises(ValueError, match="^a must be < 1"):
        _validate.real("a", 1.0, high=1.0, open_high=True)


def test_boolean_and_one_of_do_not_confuse_types():
    assert _validate.boolean("flag", np.bool_(True)) is True
    for bad in (0, 1, "no", None):
        with pytest.raises(TypeError, match="^flag must be True or False"):
            _validate.boolean("flag", bad)
    _validate.one_of("k", 1, (1, 2))
    with pytest.raises(ValueError, match="^k must be one of"):
        _validate.one_of("k", True, (1, 2))  # True is not 1
    with pytest.raises(ValueError, match="^k must be one of"):
        _validate.one_of("k", np.array([1, 2]), (1, 2))  # no ambiguous-truth error
    with pytest.raises(ValueError, match="^k must be one of"):
        _validate.one_of("k", "1", (1, 2))


def test_sequence_of_ints_names_the_entry():
    assert _validate.sequence_of_ints("w", [4, np.int64(2)]) == (4, 2)
    assert _validate.sequence_of_ints("w", np.array([1, 2])) == (1, 2)
    with pytest.raises(TypeError, match=r"^w must be a sequence of ints.*for a single entry write \(32,\)"):
        _validate.sequence_of_ints("w", 32)
    with pytest.raises(TypeError, match="^w must be a sequence of ints"):
        _validate.sequence_of_ints("w", "32")
    with pytest.raises(TypeError, match=r"^w\[1\] must be an integer"):
        _validate.sequence_of_ints("w", (1, 1.5))
    with pytest.raises(ValueError, match=r"^w\[0\] must be a positive integer"):
        _validate.sequence_of_ints("w", (0,), low=1)
    with pytest.raises(ValueError, match="^w must be a 1-D sequence"):
        _validate.sequence_of_ints("w", np.ones((2, 2), int))


def test_real_array_refuses_lossy_or_meaningless_dtypes():
    assert _validate.real_array("x", [1, 2]).dtype == np.float64
    assert _validate.real_array("x", [True], allow_bool=True).tolist() == [1.0]
    with _no_warnings():
        with pytest.raises(TypeError, match="^x must be a real array.*complex"):
            _validate.real_array("x", np.array([1 + 1j]))
    for bad, why in (([True], "boolean"), (["a"], "not numeric"), (np.array([None]), "not numeric")):
        with pytest.raises(TypeError, match=f"^x must be a real array.*{why}"):
            _validate.real_array("x", bad)
    with pytest.raises(ValueError, match="^x must be a rectangular array"):
        _validate.real_array("x", [[1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="^x must have at least 2 dimension"):
        _validate.real_array("x", [1.0], min_ndim=2)
    with pytest.raises(ValueError, match="^x contains 1 non-finite"):
        _validate.real_array("x", [1.0, np.inf])
    assert np.isnan(_validate.real_array("x", [np.nan], finite=False)[0])


class _no_warnings:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_shape_wildcards():
    x = np.zeros((2, 1, 3))
    assert _validate.shape("x", x, (..., 1, 3)) is x
    _validate.shape("x", x, (None, 1, 3))
    with pytest.raises(ValueError, match=r"^x must have shape \(out, d\) = \(1, 3\), got \(2, 1, 3\)"):
        _validate.shape("x", x, (1, 3), describe="(out, d) = (1, 3)")
    with pytest.raises(ValueError, match=r"^x must have shape \(\.\.\., 2\)"):
        _validate.shape("x", x, (..., 2))


def test_psd_matrix_per_matrix_tolerance_and_complex():
    big_and_bad = np.stack([1e6 * np.eye(2), np.diag([1.0, -1e-3])])
    with pytest.raises(ValueError, match="positive semi-definite"):  # a large neighbour does not hide it
        _validate.psd_matrix("S", big_and_bad)
    with pytest.raises(TypeError, match="^S must be a real array.*complex"):
        _validate.psd_matrix("S", np.eye(2) * 1j)
    X = np.random.default_rng(0).standard_normal((2, 4))
    _validate.psd_matrix("S", X.T @ X)  # singular and computed in floating point: fine


def test_indices():
    assert _validate.indices("i", [0, -1], 3).tolist() == [0, -1]
    with pytest.raises(ValueError, match="^i holds positions outside 0..2"):
        _validate.indices("i", [3], 3)
    with pytest.raises(TypeError, match="^i must be an int or a 1-D sequence"):
        _validate.indices("i", [0.5], 3)


def test_finite_result_raises_naming_the_outer_function():
    @_validate.finite_result
    def inner(x):
        return np.float64(x) * 1e300

    @_validate.finite_result
    def outer(x):
        return inner(x) - inner(x)  # inf - inf = nan inside, reported by outer

    assert inner(1e-10) == pytest.approx(1e290)
    with pytest.raises(ValueError, match="^inner: the result is not finite although every input is"):
        inner(1e10)
    with pytest.raises(ValueError, match="^outer: the result is not finite"):
        outer(1e10)

    @_validate.finite_result
    def pair():
        return {"a": np.ones(2), "b": (1.0, float("inf"))}

    with pytest.raises(ValueError, match=r"^pair: the result\['b'\]\[1\] is not finite"):
        pair()

    @_validate.finite_result
    def power():
        return 1e200 ** 2  # Python floats raise OverflowError: reported the same way

    with pytest.raises(ValueError, match="^power: the result is not finite"):
        power()



try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_array_checks_stay_on_the_tensor_backend():
    A = torch.eye(3, dtype=torch.float64)[None].repeat(2, 1, 1)
    assert _validate.psd_matrix("A", A) is A  # checked where it lives, returned unchanged
    assert _validate.loss_array("A", A) is A
    assert _validate.loss_array("y", torch.ones(2, dtype=torch.int64)).dtype == torch.float64
    with pytest.raises(ValueError, match="^A must be positive semi-definite"):
        _validate.psd_matrix("A", -A)
    with pytest.raises(ValueError, match="^A must be symmetric"):
        _validate.psd_matrix("A", A + torch.triu(torch.ones(3, 3, dtype=torch.float64), 1))
    with pytest.raises(TypeError, match="^A must be a real tensor"):
        _validate.loss_array("A", A.to(torch.complex128))
    with pytest.raises(ValueError, match="^A contains 1 non-finite"):
        _validate.finite_array("A", torch.tensor([1.0, float("nan")]))
