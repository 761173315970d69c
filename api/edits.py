"""Edit request bodies → domain edit values."""

from __future__ import annotations

from collections.abc import Sequence

from api.schemas import (
    AddLinkEdit,
    ChangeDemandParametersEdit,
    CloseLinkEdit,
    EditCreate,
    ModifyLinkEdit,
    SetZoneAttributesEdit,
)
from domain.edits import (
    AddLink,
    ChangeDemandParameters,
    CloseLink,
    Edit,
    ModifyLink,
    SetZoneAttributes,
)
from domain.errors import InvalidCommand
from domain.values import Link


def to_domain(edits: Sequence[EditCreate]) -> list[Edit]:
    """The domain's edit values, in order."""
    return [_one(edit) for edit in edits]


def _one(edit: EditCreate) -> Edit:
    if isinstance(edit, SetZoneAttributesEdit):
        return SetZoneAttributes(edit.zone_id, edit.population, edit.jobs)
    if isinstance(edit, AddLinkEdit):
        fields = edit.link.model_dump()
        fields["geometry"] = tuple(tuple(point) for point in edit.link.geometry)
        return AddLink(Link(**fields))
    if isinstance(edit, ModifyLinkEdit):
        return ModifyLink(edit.link_id, edit.capacity, edit.free_flow_time, edit.speed,
                          edit.lanes, edit.toll)
    if isinstance(edit, CloseLinkEdit):
        return CloseLink(edit.link_id)
    if isinstance(edit, ChangeDemandParametersEdit):
        return ChangeDemandParameters(edit.trip_rate, edit.deterrence, edit.beta)
    raise InvalidCommand(f"unknown edit operation {type(edit).__name__}")
