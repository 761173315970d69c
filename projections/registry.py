"""The built-in projections and the analysts' ones, found under an entry point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from projections.base import ENTRY_POINT_GROUP, Context, Projection
from projections.bi import BiSync
from projections.merge_requests import MergeRequests
from projections.notifications import Notifications
from projections.read_model import ReadModel

BUILT_IN: tuple[type[Projection], ...] = (ReadModel, Notifications, BiSync, MergeRequests)


class UnknownProjection(LookupError):
    """No projection of that name is built in or registered."""


def projection_classes() -> dict[str, type[Projection]]:
    """Name → class: the built-in ones, then every `cartolog.projections` entry point."""
    found: dict[str, type[Projection]] = {cls.name: cls for cls in BUILT_IN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Projection)) or not cls.name:
            raise TypeError(f"entry point {entry.name} is not a named cartolog Projection")
        if cls.name in found and found[cls.name] is not cls:
            raise TypeError(f"projection name {cls.name!r} is registered twice")
        found[cls.name] = cls
    return found


def projections(context: Context, names: list[str] | None = None) -> list[Projection]:
    """Instances of the named projections (all of them by default)."""
    classes = projection_classes()
    chosen = list(classes) if names is None else names
    missing = [n for n in chosen if n not in classes]
    if missing:
        raise UnknownProjection(f"unknown projection {missing[0]!r}; known: {', '.join(classes)}")
    return [classes[n](context) for n in chosen]
