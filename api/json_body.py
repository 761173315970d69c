"""Request bodies parsed as strict JSON: `NaN`, `Infinity` and numbers that overflow to
them are refused (Python's json module accepts all three), so no door lets a non-finite
number into a command. A refused body is a 422 problem like any other invalid body."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi import Request, Response
from fastapi.routing import APIRoute


def _refuse_constant(name: str) -> NoReturn:
    raise json.JSONDecodeError(f"{name} is not JSON: numbers must be finite", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError("a number is out of range (not a finite double)",
                                   text[:40], 0)
    return value


def _bounded_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise json.JSONDecodeError("an integer has too many digits", text[:40], 0) from None


def loads(body: bytes | str) -> Any:
    """JSON with finite numbers only (JSONDecodeError otherwise)."""
    return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float,
                      parse_int=_bounded_int)


class StrictJsonRequest(Request):
    """A request whose `json()` is `loads`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route that reads its JSON body with `StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))
        return strict
