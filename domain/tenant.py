"""Tenant: a customer organisation; its name is its subdomain."""

from __future__ import annotations

from domain.base import TenantAggregate
from domain.errors import InvalidCommand
from domain.rules import label_problem
from domain.values import TENANT_NAME, Actor, tenant_uuid


class Tenant(TenantAggregate):
    """A registered tenant. Its id is derived from its name."""

    class Registered(TenantAggregate.Created):
        display_name: str

    def __init__(self, tenant_id: str, display_name: str) -> None:
        self.tenant_id = tenant_id
        self.display_name = display_name

    @classmethod
    def register(cls, tenant_id: str, display_name: str, by: Actor) -> Tenant:
        """Register a tenant name (a DNS label: lowercase letters, digits, hyphens)."""
        if not isinstance(tenant_id, str) or not TENANT_NAME.fullmatch(tenant_id):
            raise InvalidCommand(
                f"tenant name {str(tenant_id)[:80]!r} must be a DNS label: lowercase letters, "
                "digits and inner hyphens, at most 63 characters"
            )
        problem = label_problem("display", display_name or tenant_id)
        if problem:
            raise InvalidCommand(problem)
        return cls._start(cls.Registered, tenant_uuid(tenant_id), tenant_id, by,
                          display_name=display_name or tenant_id)
