"""Errors raised for model input that cannot be simulated.

Each kind of defect has its own class so callers (and tests) can tell them apart; every message
names the offending row, link or zone.
"""

from __future__ import annotations

import math


class ModelInputError(ValueError):
    """Base class: the model input is not a valid network, demand or parameter set."""


class MalformedRowError(ModelInputError):
    """A row of an input file cannot be parsed (wrong field count, text where a number goes)."""


class MissingFileError(ModelInputError):
    """A network folder lacks a required file, or holds more than one candidate."""


class UnknownNodeError(ModelInputError):
    """A link, zone or path refers to a node the network does not define."""


class NegativeCapacityError(ModelInputError):
    """A link has a negative capacity, or zero capacity with a congestion term."""


class InvalidLinkParameterError(ModelInputError):
    """A link has a negative free-flow time, length, BPR b, BPR power or toll."""


class NonFiniteValueError(ModelInputError):
    """A value is NaN or infinite."""


class UnknownZoneError(ModelInputError):
    """A demand row or an edit refers to a zone that does not exist."""


class NegativeDemandError(ModelInputError):
    """An OD matrix cell, a population or a job count is negative."""


class DisconnectedDemandError(ModelInputError):
    """An OD pair has positive demand but no path (honouring first-thru-node) connects it."""


class InvalidParameterError(ModelInputError):
    """A run or demand parameter is outside its domain (negative gap, unknown algorithm...)."""


class EditError(ModelInputError):
    """A scenario edit cannot be applied to the base (unknown link, duplicate link id...)."""


class CostOverflowError(ModelInputError):
    """A link's travel time at its assigned flow is not a finite number: a BPR power or a
    volume/capacity ratio too large for float64 (power 1000 at twice the capacity)."""

    def __init__(self, link: int, count: int, ratio: float, power: float,
                 name: str | None = None) -> None:
        self.link, self.count, self.ratio, self.power = link, count, ratio, power
        where = name or f"link #{link} (in network order)"
        load = (f"carries {ratio:.3g} times its capacity" if math.isfinite(ratio)
                else "was given no finite flow")
        super().__init__(
            f"travel times overflow at the assigned flows: {where} {load} with BPR power "
            f"{power:g}, a time beyond any finite number; lower the power or raise the capacity "
            f"({count} link(s) overflow)")

    def naming(self, name: str) -> CostOverflowError:
        """The same error, naming the link as its network does."""
        return CostOverflowError(self.link, self.count, self.ratio, self.power, name)
