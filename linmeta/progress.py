"""A dependency-free progress bar with a time-left estimate.

It draws on stderr only when stderr is a terminal and progress is not silenced
(``quiet=True``, the ``--quiet`` CLI flag, or ``LINMETA_QUIET=1``), so logs and
pipes stay clean.
"""
from __future__ import annotations

import os
import sys
import time

_QUIET = {"value": os.environ.get("LINMETA_QUIET", "") not in ("", "0")}


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    _QUIET["value"] = bool(quiet)


def _fmt_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Context manager: ``with Progress(n, "training") as bar: ... bar.update()``.

    Parameters
    ----------
    total : number of units of work.
    desc : short label.
    enabled : force on/off; default: on iff stderr is a TTY and not quiet.
    """

    def __init__(self, total: int, desc: str = "", enabled: bool | None = None, stream=None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = not _QUIET["value"] and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self.done = 0
        self._t0 = time.perf_counter()
        self._last_draw = 0.0
        self.postfix = ""

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._draw(force=True)
        return self

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.done = min(self.done + n, self.total)
        if postfix is not None:
            self.postfix = postfix
        self._draw()

    def eta(self) -> float:
        """Estimated seconds left (``inf`` before any progress)."""
        elapsed = time.perf_counter() - self._t0
        return float("inf") if self.done == 0 else elapsed * (self.total - self.done) / self.done

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        width = 24
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        elapsed = now - self._t0
        line = (
            f"\r{self.desc} [{bar}] {self.done}/{self.total} "
            f"{_fmt_seconds(elapsed)}<{_fmt_seconds(self.eta())} {self.postfix}"
        )
        self.stream.write(line[:160].ljust(80))
        self.stream.flush()

    def __exit__(self, *exc):
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        return False
