"""Check and evaluate IAM condition expressions (CEL) with cel-python."""

from __future__ import annotations

import threading
from datetime import datetime
from functools import lru_cache

import celpy
from celpy import celtypes

# celpy's parser and evaluator are not documented as thread-safe; the servers' threads share them.
_LOCK = threading.Lock()


@lru_cache(maxsize=512)
def _program(expression: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def syntax_error(expression: str) -> str | None:
    """Return why `expression` is not valid CEL, or None when it parses."""
    with _LOCK:
        try:
            _program(expression)
        except Exception as error:  # celpy raises parser-specific types
            return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


def holds(expression: str, *, at: datetime, resource_name: str, resource_type: str) -> bool:
    """Evaluate a condition at `at` for a resource; an expression that errors does not hold."""
    service = resource_type.split("/", 1)[0]
    activation = {
        "request": celtypes.MapType({celtypes.StringType("time"): celtypes.TimestampType(at)}),
        "resource": celtypes.MapType(
            {
                celtypes.StringType("name"): celtypes.StringType(resource_name),
                celtypes.StringType("type"): celtypes.StringType(resource_type),
                celtypes.StringType("service"): celtypes.StringType(service),
            }
        ),
    }
    with _LOCK:
        try:
            result = _program(expression).evaluate(activation)
        except Exception:  # IAM treats a condition it cannot evaluate as false
            return False
    return isinstance(result, celtypes.BoolType) and bool(result)
