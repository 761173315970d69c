"""The base of every Cartolog aggregate: events carry tenant, actor and correlation id."""

from __future__ import annotations

import pickle
from typing import Any, Self
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.values import Actor


class TenantAggregate(Aggregate):
    """An aggregate owned by exactly one tenant."""

    tenant_id: str

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        # Commands work on a copy of the cached aggregate; a pickle round trip copies its
        # plain-value state several times faster than copy.deepcopy's generic walk.
        clone = object.__new__(type(self))
        clone.__dict__.update(pickle.loads(pickle.dumps(self.__dict__, pickle.HIGHEST_PROTOCOL)))
        return clone

    class Event(Aggregate.Event):
        """Every event names its tenant, the actor (`sub`) and the request's correlation id."""

        tenant_id: str
        actor: str
        correlation_id: str

    class Created(Event, Aggregate.Created):
        """Base of the creation events."""

    @classmethod
    def _start(
        cls, event_class: type[Created], aggregate_id: UUID, tenant_id: str, by: Actor,
        **fields: Any,
    ) -> Self:
        return cls._create(
            event_class, id=aggregate_id, tenant_id=tenant_id, actor=by.sub,
            correlation_id=by.correlation_id, **fields,
        )

    def _emit(self, event_class: type[Event], by: Actor, **fields: Any) -> None:
        self.trigger_event(
            event_class, tenant_id=self.tenant_id, actor=by.sub,
            correlation_id=by.correlation_id, **fields,
        )
