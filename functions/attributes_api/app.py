"""AttributesApi: external systems and Genesys data actions read and write a live
participant's attributes, or ask for a sync, through API Gateway (API key checked there).

- GET   /conversations/{conversationId}/participants/{participantId}/attributes
- PATCH /conversations/{conversationId}/participants/{participantId}/attributes
- POST  /conversations/{conversationId}/sync
- POST  /conversations/{conversationId}/resolve (attribute_bridge.resolve_routes)

The GET is answered by attribute_bridge.api_read, without pydantic or Powertools'
validating resolver: a cold container's GET used ~25% less CPU to its answer than with
the routes imported (0.58 s vs 0.77 s, same run, benchmarks/cold_start.py's child). The
other routes and their models are attribute_bridge.attributes_api, imported on the first
request that needs them; with provisioned concurrency or SnapStart, at init instead (the
pre-warmed init pays them, not a request). Both answer errors from attribute_bridge.api_errors.
The OpenAPI document is `openapi_json()` (docs/openapi.json).
"""

from __future__ import annotations

import os
from typing import Any

from attribute_bridge import api_read
from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
PREWARMED = ("provisioned-concurrency", "snap-start")  # AWS_LAMBDA_INITIALIZATION_TYPE

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in PREWARMED:
    from attribute_bridge import attributes_api  # noqa: F401 - the init is not a request


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@traced  # opt-in (EnableTracing), never captures the response: bodies hold customer data
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ids = api_read.path_ids(event) if isinstance(event, dict) else None
    if ids is not None:
        return api_read.handle(ids, context)
    from attribute_bridge import attributes_api  # the other routes (imported once)

    return attributes_api.handle(event, context)


def openapi_json() -> str:
    """The OpenAPI document, byte-for-byte reproducible (docs/openapi.json; make openapi)."""
    from attribute_bridge import attributes_api

    return attributes_api.openapi_json()
