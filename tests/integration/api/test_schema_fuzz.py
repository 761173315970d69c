"""Schemathesis against /openapi.json with authenticated requests: no 5xx, and every
response conforms to its documented schema (property-based, against the real PostGIS)."""

from __future__ import annotations

import dataclasses
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from api.services import ApiLimits
from infra.http import api_services
from infra.wiring import Container

EXAMPLES = 15
FAST = ApiLimits(read_wait_s=0.05, sse_duration_s=0.3, sse_poll_s=0.1,
                 rate_per_second=10_000, rate_burst=10_000)


def test_no_server_errors_and_conforming_responses(container: Container) -> None:
    services = dataclasses.replace(api_services(container), limits=FAST)
    app = create_app(services)
    token = container.dev_issuer.issue("acme", "admin", sub="fuzzer@acme")
    headers = {"Authorization": f"Bearer {token}", "Host": "acme.cartolog.example"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        try:
            exercise(operation, headers)
        except Exception as error:  # collect every operation's failure, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:2000])
    assert not failures, "\n\n".join(failures)


def exercise(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers,
                               checks=[not_a_server_error, response_schema_conformance])
    run()
