"""AttributesApi: external systems and Genesys data actions read and write a live
participant's attributes, or ask for a sync, through API Gateway (API key checked there).

- GET   /conversations/{conversationId}/participants/{participantId}/attributes
- PATCH /conversations/{conversationId}/participants/{participantId}/attributes
- POST  /conversations/{conversationId}/sync
- POST  /conversations/{conversationId}/resolve (attribute_bridge.resolve_routes)

The routes, their models and error answers are attribute_bridge.attributes_api, imported
on the first request rather than here: with pydantic and Powertools' validating resolver
they took this module's import from ~0.15 s (what the event handlers take) to 0.31-0.39 s.
The OpenAPI document is `openapi_json()` (docs/openapi.json).
"""

from __future__ import annotations

from typing import Any

from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@traced  # opt-in (EnableTracing), never captures the response: bodies hold customer data
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from attribute_bridge import attributes_api  # the routes (first request: imports them)

    return attributes_api.handle(event, context)


def openapi_json() -> str:
    """The OpenAPI document, byte-for-byte reproducible (docs/openapi.json; make openapi)."""
    from attribute_bridge import attributes_api

    return attributes_api.openapi_json()
