"""Shared pytest configuration.

Hypothesis profiles
-------------------
``ci`` (the default) derandomizes hypothesis: the examples are a fixed function of each test, so a
test run is reproducible and CI cannot turn red on a draw that no one can replay.  ``explore``
draws fresh random examples on every run, for hunting edge cases locally::

    HYPOTHESIS_PROFILE=explore python -m pytest tests/test_landscape.py tests/test_meta.py

A counterexample found that way is added to the test as an ``@example`` so the ``ci`` profile keeps it.
"""
import os

try:
    from hypothesis import settings
except ImportError:  # hypothesis comes with the `test` extra; without it the property tests are not collected
    settings = None

if settings is not None:
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    settings.register_profile("explore", derandomize=False, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
