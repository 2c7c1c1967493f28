"""Tracing that costs nothing when it is off.

Powertools' Tracer imports the X-Ray SDK (and botocore) even when disabled: ~0.2 s of
every cold start here. Tracing is therefore opt-in (template parameter EnableTracing,
which sets POWERTOOLS_TRACE_DISABLED), and the Tracer is only built when it is on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]


def tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower()
    return disabled in ("0", "false", "no", "off") and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def traced(handler: Handler) -> Handler:
    """Powertools `Tracer.capture_lambda_handler` when tracing is on; else the handler."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    wrapped: Handler = Tracer().capture_lambda_handler(capture_response=False)(handler)
    return wrapped
