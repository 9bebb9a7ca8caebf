"""Input validation at the public boundary.

Every helper raises with a message that names the argument as the caller wrote it, says what was
expected and, where there is one, how to fix it:

* a wrong *type* raises :class:`ArgumentTypeError`, which is a :class:`TypeError` and also a
  :class:`ValueError` (as numpy's ``AxisError`` is both a ``ValueError`` and an ``IndexError``), so
  that callers that catch bad values keep catching it;
* a wrong *value* (range, shape, non-finite entries, ...) raises :class:`ValueError`.

Nothing is coerced silently: ``True`` is not the integer 1, ``1.5`` is not a layer index, a complex
array does not lose its imaginary part.  Lossless conversions are made (an integer array becomes a
float array, a list becomes an array).  Inside the engine the types are trusted: these helpers run in
constructors and at the top of public functions, never in inner loops.  Array checks work on numpy
arrays and torch tensors alike; for a tensor the test runs on its device and only a boolean comes back.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._backend import is_torch, namespace, to_numpy


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type.  Both a ``TypeError`` and a ``ValueError``."""


def _kind(value) -> str:
    return type(value).__name__


# --------------------------------------------------------------------------------------- scalars


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int``; refuses bools, floats (even ``2.0``), strings, and values outside [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        hint = ""
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and float(value).is_integer():
            hint = f"; pass {int(value)} (an int, not a float)"
        raise ArgumentTypeError(f"{name} must be an integer, got {value!r} of type {_kind(value)}{hint}")
    if low is not None and value < low:
        words = {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer >= {low}")
        raise ValueError(f"{name} must be {words}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be an integer <= {high}, got {value}")
    return int(value)


def positive_int(name: str, value, *, allow_zero: bool = False, high: int | None = None) -> int:
    """``value`` as an ``int`` ≥ 1 (≥ 0 with ``allow_zero``), at most ``high`` if given."""
    value = integer(name, value)
    if value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} integer, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be an integer <= {high}, got {value}")
    return value


def optional_int(name: str, value, *, allow_zero: bool = False, none: str = "None") -> int | None:
    """``None``, or a positive (non-negative) ``int``; ``none`` says what ``None`` means, for the message."""
    if value is None:
        return None
    kind = "non-negative" if allow_zero else "positive"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be a {kind} integer or None ({none}), got {value!r} of type "
                                f"{_kind(value)}")
    if value < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be a {kind} integer or None ({none}), got {value}")
    return int(value)


def real(name: str, value, *, low: float | None = None, high: float | None = None, positive: bool = False,
         non_negative: bool = False, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a finite ``float``; refuses bools, complex numbers, strings, NaN/inf and values out of range.

    ``low``/``high`` bound it (strictly with ``open_low``/``open_high``); ``positive`` and ``non_negative``
    are the common cases.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        extra = "; complex values are not accepted" if isinstance(value, numbers.Complex) else ""
        raise ArgumentTypeError(f"{name} must be a real number, got {value!r} of type {_kind(value)}{extra}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    if low is not None and (value <= low if open_low else value < low):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}, got {value}")
    if high is not None and (value >= high if open_high else value > high):
        raise ValueError(f"{name} must be {'<' if open_high else '<='} {high}, got {value}")
    return value


def finite_float(name: str, value, *, positive: bool = False, non_negative: bool = False) -> float:
    """``value`` as a finite ``float`` (see :func:`real`)."""
    return real(name, value, positive=positive, non_negative=non_negative)


def boolean(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy bools too); refuses ``0``, ``1``, ``"no"``, ..."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r} of type {_kind(value)}")
    return bool(value)


def one_of(name: str, value, allowed) -> None:
    """Raise unless ``value`` is one of ``allowed`` (a bool never matches a number, nor a string a non-string)."""
    for a in allowed:
        if isinstance(value, (bool, np.bool_)) != isinstance(a, bool) or isinstance(value, str) != isinstance(a, str):
            continue
        if _equal(value, a):
            return
    raise ValueError(f"{name} must be one of {sorted(map(str, allowed))}, got {value!r}")


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def function(name: str, value, what: str = "a function") -> None:
    """Raise unless ``value`` is callable."""
    if not callable(value):
        raise ArgumentTypeError(f"{name} must be {what}, got {value!r} of type {_kind(value)}")


def instance(name: str, value, classes, what: str) -> None:
    """Raise :class:`ArgumentTypeError` unless ``value`` is an instance of ``classes``; ``what`` names them."""
    if not isinstance(value, classes):
        raise ArgumentTypeError(f"{name} must be {what}, got {_kind(value)}")


def sequence_of_ints(name: str, value, *, low: int | None = None, high: int | None = None, what: str = "") -> tuple:
    """``value`` (a list, tuple or 1-D integer array) as a tuple of ints; each entry is checked by :func:`integer`.

    A bare integer, a string or a float entry is refused (``name[i]`` is named); ``what`` describes the
    entries in messages (e.g. ``"hidden widths"``).
    """
    label = f" ({what})" if what else ""
    if isinstance(value, (str, bytes)) or isinstance(value, numbers.Number) or not _iterable(value):
        example = f"; for a single entry write ({value!r},)" if isinstance(value, numbers.Integral) else ""
        raise ArgumentTypeError(f"{name} must be a sequence of ints{label}, e.g. (4, 8), got {value!r} of type "
                                f"{_kind(value)}{example}")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of ints{label}, got an array of shape {value.shape}")
    return tuple(integer(f"{name}[{i}]", v, low=low, high=high) for i, v in enumerate(value))


def indices(name: str, index, size: int) -> np.ndarray:
    """``index`` (an int or a 1-D sequence of ints) as an integer array of positions in ``range(-size, size)``."""
    arr = np.asarray(index) if not isinstance(index, (str, bytes)) else np.asarray([index])
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ArgumentTypeError(f"{name} must be an int or a 1-D sequence of ints (positions along the task axis), "
                                f"got {index!r}")
    if arr.size and (arr.min() < -size or arr.max() >= size):
        raise ValueError(f"{name} holds positions outside 0..{size - 1} (there are {size} tasks), got {index!r}")
    return arr


def _iterable(value) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------- arrays


def _dtype_problem(kind: str, allow_bool: bool) -> str | None:
    if kind == "c":
        return ("is complex; linmeta works on real arrays and does not drop imaginary parts: pass the real "
                "part explicitly (x.real) if that is what you mean")
    if kind == "b" and not allow_bool:
        return "is boolean; pass a numeric (float) array"
    if kind not in "biuf":
        return "is not numeric"
    return None


def real_array(name: str, x, *, min_ndim: int = 0, finite: bool = True, allow_bool: bool = False) -> np.ndarray:
    """``x`` as a float64 numpy array, refusing complex, boolean (unless ``allow_bool``), object and string data.

    Integer entries convert losslessly.  ``min_ndim`` is the least number of dimensions; ``finite``
    refuses NaN and infinities.  Torch tensors are copied to the host (use :func:`loss_array` to keep
    them on their device).
    """
    if is_torch(x):
        x = to_numpy(x)
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers, got {_kind(x)} ({exc})") from None
    problem = _dtype_problem(arr.dtype.kind, allow_bool)
    if problem:
        raise ArgumentTypeError(f"{name} must be a real array, but its dtype {arr.dtype} {problem}")
    arr = arr.astype(float, copy=False)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if finite:
        finite_array(name, arr)
    return arr


def loss_array(name: str, x, *, allow_bool: bool = False):
    """``x`` as a real floating array *on its backend*: numpy arrays and torch tensors keep their device and
    floating dtype (integer data becomes float64); lists become float64 numpy arrays.  Complex, boolean
    (unless ``allow_bool``), object and string data are refused.  Finiteness is not checked here.
    """
    if is_torch(x):
        import torch

        if x.is_complex():
            raise ArgumentTypeError(f"{name} must be a real tensor, but its dtype {x.dtype} is complex; "
                                    "pass the real part explicitly (x.real) if that is what you mean")
        if x.dtype == torch.bool and not allow_bool:
            raise ArgumentTypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
        return x if x.is_floating_point() else x.to(torch.float64)
    arr = np.asarray(x) if isinstance(x, np.ndarray) else _asarray(name, x)
    problem = _dtype_problem(arr.dtype.kind, allow_bool)
    if problem:
        raise ArgumentTypeError(f"{name} must be a real array, but its dtype {arr.dtype} {problem}")
    return arr if arr.dtype.kind == "f" else arr.astype(float)


def _asarray(name, x):
    try:
        return np.asarray(x)
    except ValueError as exc:
        raise ValueError(f"{name} must be a rectangular array of numbers, got {_kind(x)} ({exc})") from None


def finite_array(name: str, x):
    """Raise if ``x`` (numpy or torch, on any device) holds a NaN or an infinity; return ``x``.

    The test runs where ``x`` lives: for a CUDA tensor only one boolean comes back to the host.
    """
    if is_torch(x):
        ok = bool(namespace(x).all(namespace(x).isfinite(x)))
    else:
        ok = bool(np.all(np.isfinite(np.asarray(x))))
    if not ok:
        arr = to_numpy(x)
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf); clean or drop those entries"
        )
    return x


def _describe(expected) -> str:
    parts = ["..." if e is Ellipsis else ("*" if e is None else str(e)) for e in expected]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def shape(name: str, x, expected, *, describe: str | None = None):
    """Raise unless ``x.shape`` matches ``expected``: a tuple of sizes, ``None`` for any size and a leading
    ``...`` for any number of leading axes.  ``describe`` is the expected shape in words, e.g.
    ``"(out, d) = (1, 3)"``.  Returns ``x``.
    """
    got = tuple(getattr(x, "shape", np.shape(x)))
    exp = tuple(expected)
    lead = bool(exp) and exp[0] is Ellipsis
    tail = exp[1:] if lead else exp
    ok = (len(got) >= len(tail)) if lead else (len(got) == len(tail))
    if ok:
        got_tail = got[len(got) - len(tail):] if tail else ()
        ok = all(e is None or e == g for e, g in zip(tail, got_tail))
    if not ok:
        raise ValueError(f"{name} must have shape {describe or _describe(exp)}, got {got}")
    return x


def default_tol(d: int, dtype=None) -> float:
    """Round-off tolerance (relative) of symmetry/PSD checks on d x d matrices of ``dtype``."""
    eps = 1.1920929e-07 if "float32" in str(dtype) else 2.220446049250313e-16
    return max(1e-10, 64.0 * max(int(d), 1) * eps)


def symmetric_matrix(name: str, mat, *, tol: float | None = None):
    """Check that ``mat`` (..., n, n) is real, finite and symmetric to round-off (``tol`` times its largest entry)."""
    arr = to_numpy(mat) if is_torch(mat) else real_array(name, mat, finite=False)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., n, n), got shape {arr.shape}")
    finite_array(name, arr)
    if arr.size:
        tol = default_tol(arr.shape[-1]) if tol is None else tol
        scale = np.max(np.abs(arr), axis=(-2, -1))
        asym = np.max(np.abs(arr - np.swapaxes(arr, -1, -2)), axis=(-2, -1))
        if np.any(asym > tol * scale):
            raise ValueError(f"{name} must be symmetric; max |C - C^T| = {float(np.max(asym)):.3g}. "
                             "Pass (C + C.T) / 2 if this is round-off")
    return mat


def psd_matrix(name: str, cov, *, tol: float | None = None):
    """Check that ``cov`` (..., n, n) is real, finite, symmetric and positive semi-definite.

    Symmetry and the smallest eigenvalue are tested per matrix against ``tol`` times its largest
    entry (round-off; default :func:`default_tol`).  Returns a float64 numpy array, or a torch tensor
    unchanged (checked on its device).
    """
    if is_torch(cov):
        return _psd_torch(name, loss_array(name, cov), tol)
    cov = real_array(name, cov, finite=False)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., n, n), got shape {cov.shape}")
    finite_array(name, cov)
    if cov.size == 0:
        return cov
    tol = default_tol(cov.shape[-1]) if tol is None else tol
    scale = np.max(np.abs(cov), axis=(-2, -1))
    asym = np.max(np.abs(cov - np.swapaxes(cov, -1, -2)), axis=(-2, -1))
    if np.any(asym > tol * scale):
        worst = float(np.max(asym))
        raise ValueError(
            f"{name} must be symmetric; max |C - C^T| = {worst:.3g}. Pass (C + C.T) / 2 if this is round-off"
        )
    lam_min = np.linalg.eigvalsh(cov)[..., 0]
    if np.any(lam_min < -tol * scale):
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {float(np.min(lam_min)):.3g}. "
            "Build it as L @ L.T or clip negative eigenvalues"
        )
    return cov


def _psd_torch(name, cov, tol):
    import torch

    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., n, n), got shape {tuple(cov.shape)}")
    finite_array(name, cov)
    if cov.numel() == 0:
        return cov
    tol = default_tol(cov.shape[-1], cov.dtype) if tol is None else tol
    scale = cov.abs().amax(dim=(-2, -1))
    asym = (cov - cov.mT).abs().amax(dim=(-2, -1))
    lam_min = torch.linalg.eigvalsh(cov)[..., 0]
    bad_sym, bad_psd = (bool(v) for v in torch.stack([(asym > tol * scale).any(), (lam_min < -tol * scale).any()]))
    if bad_sym:
        raise ValueError(f"{name} must be symmetric; max |C - C^T| = {float(asym.max()):.3g}. "
                         "Pass (C + C.mT) / 2 if this is round-off")
    if bad_psd:
        raise ValueError(f"{name} must be positive semi-definite; its smallest eigenvalue is "
                         f"{float(lam_min.min()):.3g}. Build it as L @ L.mT or clip negative eigenvalues")
    return cov


def matrix_pair(names: tuple, a, b, *, shape: str, shared: str) -> tuple:
    """``(a, b)`` as finite float arrays of at least 2 dimensions with the same size along axis -2.

    ``shape`` describes the expected shape in messages (e.g. ``"(..., n, features)"``) and ``shared``
    names what axis -2 counts (e.g. ``"samples n"``).
    """
    a, b = real_array(names[0], a, finite=False), real_array(names[1], b, finite=False)
    for name, x in zip(names, (a, b)):
        if x.ndim < 2:
            raise ValueError(f"{name} must have shape {shape}, got shape {x.shape}")
        finite_array(name, x)
    if a.shape[-2] != b.shape[-2]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of {shared} (axis -2); "
                         f"got {a.shape[-2]} and {b.shape[-2]}")
    return a, b


# ---------------------------------------------------------------------------------------- outputs


def _first_nonfinite(out, path: str):
    """The path of the first non-finite number in a result (arrays, numbers, tuples, dicts, dataclasses)."""
    import dataclasses

    if isinstance(out, (bool, np.bool_, str, bytes)) or out is None:
        return None
    if isinstance(out, (numbers.Number, np.ndarray, np.generic)) or is_torch(out):
        arr = to_numpy(out)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            return path
        return None
    if isinstance(out, dict):
        items = out.items()
    elif isinstance(out, (tuple, list)):
        items = enumerate(out)
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        items = ((f.name, getattr(out, f.name)) for f in dataclasses.fields(out))
    else:
        return None
    for key, value in items:
        bad = _first_nonfinite(value, f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]")
        if bad is not None:
            return bad
    return None


_RESULT_CHECK = __import__("contextvars").ContextVar("linmeta_finite_result_depth", default=0)


def finite_result(func):
    """Decorator for closed forms: raise :class:`ValueError` instead of returning a non-finite result.

    The inputs are validated (finite) by the function itself, so a NaN or an infinity in the result means
    the inputs lie outside the range where the closed form is representable in float64 (a huge ``alpha``,
    scale or number of steps).  The message names the function the caller called (a decorated function
    called by another one is checked by the outer one only) and the non-finite part of the result.
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        depth = _RESULT_CHECK.get()
        if depth:  # inside another closed form: the outer call checks the final result
            token = _RESULT_CHECK.set(depth + 1)
            try:
                return func(*args, **kwargs)
            finally:
                _RESULT_CHECK.reset(token)
        token = _RESULT_CHECK.set(1)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = func(*args, **kwargs)
        except OverflowError:
            bad = "result"
        else:
            bad = _first_nonfinite(out, "result")
        finally:
            _RESULT_CHECK.reset(token)
        if bad is not None:
            raise ValueError(
                f"{func.__name__}: the {bad} is not finite although every input is: the inputs are outside the "
                "range float64 can represent here (e.g. a huge alpha, scale or number of steps); use smaller values"
            ) from None
        return out

    return wrapper
