"""Prometheus metrics of a worker, in the text exposition format (no client library)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


@dataclass
class WorkerMetrics:
    """Jobs in flight, job durations, attempts by outcome; lag comes from a callback."""

    in_flight: int = 0
    durations: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    lag: Callable[[], dict[int, int]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self) -> None:
        """A job attempt began computing."""
        with self._lock:
            self.in_flight += 1

    def finished(self, seconds: float) -> None:
        """A job attempt ended after `seconds`."""
        with self._lock:
            self.in_flight -= 1
            self.duration_sum += seconds
            self.duration_count += 1
            for i, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    self.durations[i] += 1

    def attempt(self, outcome: str) -> None:
        """Count an attempt by outcome (completed, failed, cancelled)."""
        with self._lock:
            self.attempts[outcome] = self.attempts.get(outcome, 0) + 1

    def render(self) -> str:
        """The metrics as Prometheus text."""
        with self._lock:
            lines = ["# TYPE cartolog_worker_jobs_in_flight gauge",
                     f"cartolog_worker_jobs_in_flight {self.in_flight}",
                     "# TYPE cartolog_worker_job_duration_seconds histogram"]
            for bound, count in zip(DURATION_BUCKETS, self.durations, strict=True):
                label = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'cartolog_worker_job_duration_seconds_bucket{{le="{label}"}} '
                             f"{count}")
            lines += [f"cartolog_worker_job_duration_seconds_sum {self.duration_sum}",
                      f"cartolog_worker_job_duration_seconds_count {self.duration_count}",
                      "# TYPE cartolog_worker_attempts_total counter"]
            lines += [f'cartolog_worker_attempts_total{{outcome="{k}"}} {v}'
                      for k, v in sorted(self.attempts.items())]
        if self.lag is not None:
            lines.append("# TYPE cartolog_worker_group_lag gauge")
            lines += [f'cartolog_worker_group_lag{{partition="{p}"}} {n}'
                      for p, n in sorted(self.lag().items())]
        return "\n".join(lines) + "\n"
