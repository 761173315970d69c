"""Link-flow changes of two runs, each marked significant or within convergence noise."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.convergence import RunLinks, classify
from api.reads import TenantReads

METHOD = ("noise interval per link from each run's relative gap (Bregman bound of the "
          "Beckmann objective, gap shared over used links); see docs/decisions/0702")

RUN_LINKS_SQL = """
SELECT r.link_id, r.flow, l.free_flow_time, l.b, l.power, l.capacity, l.closed
FROM link_results r
JOIN simulation_runs s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
LEFT JOIN scenario_links l ON l.tenant_id = r.tenant_id AND l.scenario_id = s.scenario_id
     AND l.link_id = r.link_id
WHERE r.tenant_id = :tenant AND r.run_id = :run"""

GAP_SQL = """SELECT value FROM indicators WHERE tenant_id = :tenant AND run_id = :run
AND name = 'relative_gap'"""


def relative_gap(reads: TenantReads, run: UUID) -> float | None:
    """The gap the run reported (None for a model that reports none)."""
    value = reads.scalar(GAP_SQL, run=run)
    return None if value is None else float(value)


def link_changes(reads: TenantReads, a: UUID, b: UUID) -> list[dict[str, Any]]:
    """Every link of either run, with flows, difference, significance and noise half-widths."""
    rows_a = {r["link_id"]: dict(r) for r in reads.rows(RUN_LINKS_SQL, run=a)}
    rows_b = {r["link_id"]: dict(r) for r in reads.rows(RUN_LINKS_SQL, run=b)}
    ids = sorted(rows_a.keys() | rows_b.keys())
    side_a = [rows_a.get(i) or {**rows_b[i], "flow": None} for i in ids]
    side_b = [rows_b.get(i) or {**rows_a[i], "flow": None} for i in ids]
    found = classify(RunLinks.of(side_a, relative_gap(reads, a) or 0.0),
                     RunLinks.of(side_b, relative_gap(reads, b) or 0.0))
    changes = []
    for index, link_id in enumerate(ids):
        flow_a, flow_b = side_a[index]["flow"], side_b[index]["flow"]
        changes.append({
            "link_id": link_id, "flow_a": flow_a, "flow_b": flow_b,
            "difference": (flow_b or 0.0) - (flow_a or 0.0),
            "significant": bool(found.significant[index]),
            "certain": bool(found.certain[index]),
            "noise_a": float(found.noise_a[index]), "noise_b": float(found.noise_b[index])})
    changes.sort(key=lambda c: (-abs(c["difference"]), c["link_id"]))
    return changes
