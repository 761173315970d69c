"""What this machine (or container) has to share among the processes `cartolog` runs."""

from __future__ import annotations

import contextlib
from pathlib import Path


def memory_mb(share: float = 0.75) -> int:
    """`share` of the memory this process may use, in MiB: the machine's, or its cgroup's
    limit when lower (a container's). 0 where neither can be read."""
    limits = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) * 1024)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            text = Path(path).read_text().strip()
            if text.isdigit() and int(text) < 2**60:
                limits.append(int(text))
    return int(min(limits) * share / 2**20) if limits else 0
