"""Link results, skims, accessibility and the run's indicators (see docs/model.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation_worker.model.network import FloatArray, ModelInput

# Fuel use per vehicle-km as a function of mean link speed v (km/h), in the form of the UK
# Department for Transport's TAG Data Book (table A1.3.8, car, petrol):
#     litres/km = a / v + b + c * v + d * v**2
# converted to CO2 with the petrol carbon content of 2.31 kg CO2 per litre (TAG table A3.3).
# The coefficients are configurable; see docs/model.md for their provenance.


@dataclass(frozen=True)
class EmissionFactors:
    """Speed-dependent fuel use (TAG form) and CO2 per litre; speeds clamped to a range."""

    a: float = 0.4471
    b: float = 0.0600
    c: float = -0.000534
    d: float = 0.00000457
    kg_co2_per_litre: float = 2.31
    min_speed_kmh: float = 5.0
    max_speed_kmh: float = 130.0

    def grams_per_km(self, speed_kmh: FloatArray) -> FloatArray:
        """CO2 in g per vehicle-km at ``speed_kmh``."""
        v = np.clip(speed_kmh, self.min_speed_kmh, self.max_speed_kmh)
        litres = self.a / v + self.b + self.c * v + self.d * v**2
        return np.asarray(litres * self.kg_co2_per_litre * 1000.0, dtype=np.float64)


DEFAULT_EMISSIONS = EmissionFactors()


@dataclass(frozen=True)
class Indicators:
    """Network-wide indicators; units in the field names."""

    vehicle_hours: float
    vehicle_km: float
    mean_speed_kmh: float
    share_vkm_over_90pct_vc: float
    total_trips: float
    mean_trip_minutes: float
    co2_tonnes: float


@dataclass(frozen=True, eq=False)
class LinkResults:
    """Per network link (closed links: flow 0, the rest NaN). Time and cost in network units."""

    flow: FloatArray
    time: FloatArray
    volume_capacity: FloatArray
    generalized_cost: FloatArray


def link_times(model: ModelInput, flows: FloatArray) -> FloatArray:
    """Congested BPR travel time (no toll or distance terms) per network link."""
    net = model.network
    ratio = np.divide(flows, net.capacity, out=np.zeros_like(flows), where=net.capacity > 0)
    congestion = np.where((net.bpr_b == 0) | (net.bpr_power == 0), net.bpr_b,
                          net.bpr_b * ratio**net.bpr_power)
    return np.asarray(net.free_flow_time * (1.0 + congestion), dtype=np.float64)


def link_results(model: ModelInput, flows: FloatArray) -> LinkResults:
    """Flows, times, v/c and generalized cost for every network link."""
    net = model.network
    time = link_times(model, flows)
    cost = time + model.costs.toll_factor * net.toll + model.costs.distance_factor * net.length
    vc = np.divide(flows, net.capacity, out=np.full_like(flows, np.nan), where=net.capacity > 0)
    closed = ~net.link_open
    time[closed] = np.nan
    cost[closed] = np.nan
    vc[closed] = np.nan
    return LinkResults(flow=flows, time=time, volume_capacity=vc, generalized_cost=cost)


def accessibility(model: ModelInput, time_skim: FloatArray, cost_skim: FloatArray,
                  beta: float) -> tuple[FloatArray, FloatArray]:
    """Jobs reachable within the accessibility threshold, and ln(sum_j jobs_j exp(-beta c_ij))."""
    jobs = np.array([z.jobs for z in model.zones], dtype=np.float64)
    minutes = time_skim * model.units.time_minutes
    within = (minutes <= model.accessibility_minutes) & np.isfinite(minutes)
    reachable = within.astype(np.float64) @ jobs
    finite = np.isfinite(cost_skim)
    weights = np.where(finite, np.exp(-beta * np.where(finite, cost_skim, 0.0)), 0.0)
    total = weights @ jobs
    logsum = np.log(total, out=np.full_like(total, -np.inf), where=total > 0)
    return reachable, logsum


def indicators(model: ModelInput, links: LinkResults, trips: FloatArray,
               time_skim: FloatArray, emissions: EmissionFactors = DEFAULT_EMISSIONS
               ) -> Indicators:
    """Aggregate the run's indicators (definitions in docs/model.md)."""
    net = model.network
    open_ = net.link_open
    flow = links.flow[open_]
    hours = links.time[open_] * model.units.time_minutes / 60.0
    km = net.length[open_] * model.units.length_km
    vkm = float(flow @ km)
    vht = float(flow @ hours)
    speed = np.divide(km, hours, out=np.full_like(km, emissions.max_speed_kmh), where=hours > 0)
    congested = links.volume_capacity[open_] > 0.9
    total_trips = float(trips.sum())
    reachable = np.isfinite(time_skim) & (trips > 0)
    trip_minutes = float((trips[reachable] * time_skim[reachable]).sum()) * model.units.time_minutes
    return Indicators(
        vehicle_hours=vht,
        vehicle_km=vkm,
        mean_speed_kmh=vkm / vht if vht > 0 else 0.0,
        share_vkm_over_90pct_vc=float(flow[congested] @ km[congested]) / vkm if vkm > 0 else 0.0,
        total_trips=total_trips,
        mean_trip_minutes=trip_minutes / total_trips if total_trips > 0 else 0.0,
        co2_tonnes=float((flow * km) @ emissions.grams_per_km(speed)) / 1e6,
    )
