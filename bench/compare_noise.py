"""How long marking link changes significant or within convergence noise takes.

Two synthetic runs of N links (BPR b = 0.15, power 4, random capacities, free-flow times and
flows; the second within 0.1 % of the first, both at gap 1e-3) are classified by
`api.convergence.classify`, side by side with the plain flow difference sorted by size (what
`/v1/compare` did before). Median of 3 runs each. `--quick`: 20 000 links instead of 100 000.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from api.convergence import RunLinks, classify
from bench.common import figure, median_of, report


def runs(n: int) -> tuple[RunLinks, RunLinks]:
    """Two runs of the same network whose flows differ by at most 0.1 %."""
    rng = np.random.default_rng(7)
    flow, capacity = rng.uniform(0, 6000, n), rng.uniform(500, 5000, n)
    t0, b, power = rng.uniform(0.5, 10, n), np.full(n, 0.15), np.full(n, 4.0)
    closed = np.zeros(n, dtype=np.bool_)
    nearby = flow * rng.uniform(0.999, 1.001, n)
    return (RunLinks(flow, t0, b, power, capacity, closed, 1e-3),
            RunLinks(nearby, t0, b, power, capacity, closed, 1e-3))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    n = 20_000 if "--quick" in sys.argv else 100_000
    a, b = runs(n)
    noise = median_of(3, lambda: timed(lambda: classify(a, b)))
    plain = median_of(3, lambda: timed(lambda: np.argsort(-np.abs(b.flow - a.flow))))
    report("compare_noise", [figure(f"classify {n} links", noise, "s",
                                    "difference sorted by size", plain,
                                    higher_is_better=False)],
           significant=int(classify(a, b).significant.sum()))


if __name__ == "__main__":
    main()
