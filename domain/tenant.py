"""Tenant: a customer organisation; its name is its subdomain."""

from __future__ import annotations

from domain.base import TenantAggregate
from domain.errors import InvalidCommand
from domain.rules import label_problem, number_problem
from domain.values import TENANT_NAME, Actor, tenant_uuid


class Tenant(TenantAggregate):
    """A registered tenant. Its id is derived from its name."""

    # The operator's storage quota for this tenant, MiB (0: no limit); None: the server's
    # CARTOLOG_TENANT_STORAGE_MB (decision 0719).
    storage_quota_mb: float | None = None

    class Registered(TenantAggregate.Created):
        display_name: str

    class StorageQuotaSet(TenantAggregate.Event):
        megabytes: float | None

        def apply(self, tenant: Tenant) -> None:
            tenant.storage_quota_mb = self.megabytes

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

    def set_storage_quota(self, megabytes: float | None, by: Actor) -> bool:
        """Set this tenant's storage quota in MiB (0: no limit; None: the server's default);
        False when it already is that."""
        if megabytes is not None:
            problem = number_problem("a storage quota", megabytes)
            if problem:
                raise InvalidCommand(problem)
        if megabytes == self.storage_quota_mb:
            return False
        self._emit(Tenant.StorageQuotaSet, by, megabytes=megabytes)
        return True
