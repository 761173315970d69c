"""Errors raised for model input that cannot be simulated.

Each kind of defect has its own class so callers (and tests) can tell them apart; every message
names the offending row, link or zone.
"""

from __future__ import annotations


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
