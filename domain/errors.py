"""Domain errors. Each maps to one HTTP status and one CLI exit reason at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a command can raise on purpose."""


class NotFound(DomainError):
    """No such aggregate for this tenant (another tenant's aggregate is 'not found' too)."""

    def __init__(self, kind: str, aggregate_id: object) -> None:
        super().__init__(f"{kind} {aggregate_id} not found")
        self.kind = kind
        self.aggregate_id = aggregate_id


class UnknownTenant(DomainError):
    """The tenant was never registered."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} is not registered")
        self.tenant_id = tenant_id


class AlreadyExists(DomainError):
    """An aggregate with this identity was already created."""


class VersionConflict(DomainError):
    """The aggregate changed since the version the caller based its command on."""

    def __init__(self, aggregate_id: object, expected: int, actual: int | None) -> None:
        actual_text = "a newer version" if actual is None else f"version {actual}"
        super().__init__(
            f"{aggregate_id} is at {actual_text}, not at the expected version {expected}"
        )
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual


class InvalidCommand(DomainError):
    """The command's input breaks a domain rule; `problems` lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InvalidTransition(DomainError):
    """The aggregate's state does not allow this command (e.g. cancelling a finished run)."""


class NotAllowed(DomainError):
    """The caller may not do this to this aggregate (e.g. approve their own merge request)."""


class QuotaExceeded(DomainError):
    """Storing this would take the tenant past its storage quota (CARTOLOG_TENANT_STORAGE_MB);
    nothing was stored."""

