"""Large work arrays on the kernel's normal pages (docs/decisions/0132).

NumPy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MB or more. Where huge pages are given on request and defragmented on demand (the default
``madvise`` settings), the first write to each 2 MB page waits for the kernel to compact
memory: touching 300 MB took 0.57 s instead of 0.13 s on these machines. The assignment's
per-origin arrays are written once, unevenly and soon, so they are allocated without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import numpy as np


def _hugepage_switch() -> Callable[[bool], bool] | None:
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return cast("Callable[[bool], bool] | None", switch)


@contextmanager
def normal_pages() -> Iterator[None]:
    """Arrays allocated inside are not advised to use huge pages; the setting is restored
    after (a no-op where NumPy has no such switch)."""
    switch = _hugepage_switch()
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)
