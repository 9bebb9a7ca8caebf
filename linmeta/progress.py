"""A dependency-free progress bar with a time-left estimate.

It draws on stderr only when stderr is a terminal and progress is not silenced
(``quiet=True``, the ``--quiet`` CLI flag, or ``LINMETA_QUIET=1``), so logs and
pipes stay clean.  Bars started inside a :func:`label` block name what they belong
to (the runner labels each experiment's bars with its name), and the time left
counts only the units still to compute, not those loaded from a cache.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

_QUIET = {"value": os.environ.get("LINMETA_QUIET", "") not in ("", "0")}
_LABELS: list = []  # what the bars of this process belong to (the experiment being run), innermost last


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    _QUIET["value"] = bool(quiet)


def is_quiet() -> bool:
    return _QUIET["value"]


def shows(stream=None) -> bool:
    """Whether progress is drawn on ``stream`` (default stderr): it is a terminal and progress is not silenced."""
    stream = stream or sys.stderr
    return not _QUIET["value"] and hasattr(stream, "isatty") and stream.isatty()


@contextlib.contextmanager
def label(text: str):
    """Prefix every progress bar started inside the block with ``text: `` (e.g. the experiment's name)."""
    _LABELS.append(str(text))
    try:
        yield
    finally:
        _LABELS.pop()


def current_label() -> str:
    return _LABELS[-1] if _LABELS else ""


def fmt_seconds(s: float) -> str:
    """``m:ss`` or ``h:mm:ss`` (``?`` for an unknown time)."""
    return _fmt_seconds(s)


def status(line: str, stream=None) -> None:
    """Print one status line (the overall progress of a long job) on stderr, if progress is shown."""
    stream = stream or sys.stderr
    if shows(stream):
        stream.write("\r" + line[:99].ljust(80) + "\n")
        stream.flush()


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
    desc : short label; inside :func:`label` blocks it is prefixed with the label (the experiment).
    enabled : force on/off; default: on iff stderr is a TTY and not quiet.
    initial : units already done before the bar starts (pieces loaded from a cache); they count as
        done but not in the rate, so the time left covers only the units still to compute.
    """

    def __init__(self, total: int, desc: str = "", enabled: bool | None = None, stream=None, initial: int = 0):
        self.total = max(int(total), 1)
        prefix = current_label()
        self.desc = f"{prefix}: {desc}" if prefix and not desc.startswith(prefix) else desc
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = shows(self.stream)
        self.enabled = enabled
        self.initial = min(max(int(initial), 0), self.total)
        self.done = self.initial
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
        computed = self.done - self.initial
        if self.done >= self.total:
            return 0.0
        return float("inf") if computed <= 0 else elapsed * (self.total - self.done) / computed

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
        try:
            self.stream.write(line[:100].ljust(80))
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # the terminal went away: stop drawing
            self.enabled = False

    def __exit__(self, *exc):
        if self.enabled:
            self._draw(force=True)
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass
        return False
