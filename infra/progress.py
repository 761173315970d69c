"""A progress bar on stderr for long operator work (silent when stderr is not a TTY)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Call with (done, total); prints at most ten times a second."""

    def __init__(self, label: str, force: bool = False) -> None:
        self.label = label
        self.enabled = force or sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{total} ({share:.0%})")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
