"""Shared simulation: training, Monte Carlo, statistics."""
