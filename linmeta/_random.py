"""Seeded randomness: every random draw in linmeta comes from an explicit ``numpy.random.Generator``."""
from __future__ import annotations

import numbers

import numpy as np


def as_generator(rng, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an int seed, a sequence of ints or a SeedSequence.

    ``None`` is refused: linmeta never falls back to global random state.  ``name`` is the argument's
    name in error messages (e.g. ``"seed"``).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError(f"{name} must be a numpy.random.Generator or an int seed; linmeta never uses global "
                         "random state")
    if isinstance(rng, (bool, np.bool_, float, complex, str, bytes)) or (
            isinstance(rng, numbers.Number) and not isinstance(rng, numbers.Integral)):
        from ._validate import ArgumentTypeError

        raise ArgumentTypeError(f"{name} must be a numpy.random.Generator, a non-negative int seed, a sequence of "
                                f"ints or a numpy.random.SeedSequence, got {rng!r} of type {type(rng).__name__}")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numpy.random.Generator, a non-negative int seed, a sequence of "
                         f"non-negative ints or a numpy.random.SeedSequence, got {rng!r} ({exc})") from None
