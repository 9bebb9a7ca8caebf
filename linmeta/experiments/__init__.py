"""Paper reproductions: one module per figure or table, found by :mod:`.registry`.

Each module defines ``EXPERIMENT`` (:class:`~linmeta.experiments.base.Experiment`).
Run them with the ``linmeta`` command or :mod:`linmeta.experiments.runner`.
"""
