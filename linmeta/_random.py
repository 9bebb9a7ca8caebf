"""Seeded randomness: every random draw in linmeta comes from an explicit ``numpy.random.Generator``."""
from __future__ import annotations

import numpy as np


def as_generator(rng) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, an int seed, a sequence of ints or a SeedSequence.

    ``None`` is refused: linmeta never falls back to global random state.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("rng must be a numpy.random.Generator or an int seed; linmeta never uses global random state")
    return np.random.default_rng(rng)
