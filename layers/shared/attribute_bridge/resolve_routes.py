"""POST /conversations/{conversationId}/resolve: the data-action path for orgs that use a
Genesys web-services data action (genesys/data-actions/resolve-attributes-web.json). The
same input and answer as ResolveAttributesFunction (attribute_bridge.resolve), answered
synchronously. The AttributesApi includes this router (`app.include_router(router)`).

Every answer this path understands is a 200 with `ok` and `errorCode`, as the Lambda
action answers: an Architect flow branches the same way on either action. Non-2xx answers
are what came before or around the resolve (no or a wrong API key, throttling, a body that
is not a JSON object, an unexpected failure): Genesys then takes the Failure path.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from attribute_bridge import resolve, wiring
from attribute_bridge.api_models import ApiError
from attribute_bridge.errors import InvalidInput

RESOLVE_PATH = "/conversations/<conversationId>/resolve"

logger = Logger(child=True)
metrics = Metrics()  # Powertools shares one metric set: the API's handler flushes it
router = Router()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped


REFUSED_BEFORE_RESOLVING: dict[int, str] = {
    400: "The body is not a JSON object, or names another conversationId than the path.",
    403: "Missing or invalid API key (answered by API Gateway).",
    415: "The body is not JSON (Content-Type must be application/json).",
    429: "Throttled by the API's usage plan.",
    500: "Unexpected failure of this service.",
    502: "A service this API depends on failed before the resolve could answer.",
}


class ResolveAnswer(BaseModel):
    """The data action's output contract: flat, every key always present."""

    model_config = ConfigDict(extra="forbid")

    ok: bool = Field(description="The external system answered; attributesJson holds it.")
    status: str = Field(
        description="resolved | written | unchanged | write_failed | failed",
        examples=["written"],
    )
    errorCode: str = Field(
        description="Empty when all went well; else INVALID_INPUT, NOT_FOUND, TIMEOUT, "
        "EXTERNAL_UNAVAILABLE, EXTERNAL_REJECTED, GENESYS_UNAVAILABLE, CONFIGURATION, "
        "WRITE_REFUSED or WRITE_FAILED."
    )
    errorMessage: str = Field(description="Why, for logs; never customer values.")
    conversationId: str
    participantId: str
    attributesJson: str = Field(
        description="The mapped attributes as a JSON object in a string ('{}' when none).",
        examples=['{"case_priority":"high","case_status":"open"}'],
    )
    attributeCount: int
    written: bool
    writtenKeys: str = Field(description="Comma-separated names written.")
    rejectedKeys: str = Field(
        description="Comma-separated names in the answer that could not be used."
    )
    correlationId: str


@router.post(
    RESOLVE_PATH,
    summary="Resolve attributes now: the external system's answer, optionally written",
    description=(
        "For a Genesys web-services data action. The body is the action's flat input "
        "(participantId, mediaType, write, call context fields such as ani, allow-listed "
        "attributes); conversationId is the path's. Always 200 with `ok` and `errorCode` "
        "for the outcomes the service understands."
    ),
    operation_id="resolveConversationAttributes",
    tags=["data actions"],
    responses={
        200: {
            "description": "The answer, whatever its outcome (see ok and errorCode).",
            "content": {"application/json": {"model": ResolveAnswer}},
        },
        **{
            status: {
                "description": description,
                "content": {"application/json": {"model": ApiError}},
            }
            for status, description in REFUSED_BEFORE_RESOLVING.items()
        },
    },
)
def resolve_now(
    conversation_id: Annotated[
        str,
        Path(alias="conversationId", title="conversationId", description="Conversation id."),
    ],
    request: Annotated[
        dict[str, Any] | None, Body(description="The action's flat input; may be empty.")
    ] = None,
) -> ResolveAnswer:
    data = dict(request or {})
    if data.get(resolve.CONVERSATION_ID, conversation_id) != conversation_id:
        raise InvalidInput("the body names another conversationId than the path")
    data[resolve.CONVERSATION_ID] = conversation_id
    settings = wiring.current_settings()
    request_context = router.current_event.get("requestContext") or {}
    correlation_id = str(request_context.get("requestId") or router.lambda_context.aws_request_id)
    resolution = resolve.resolve(
        data,
        wiring.genesys(),
        wiring.external_system(),
        wiring.conversation_state(),
        settings,
        resolve.budget_for(settings, router.lambda_context),
        correlation_id,
    )
    if resolution.ok:
        metrics.add_metric(name="ApiResolved", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="ApiResolveFailed", unit=MetricUnit.Count, value=1)
    logger.info(
        "Resolved" if resolution.ok else "Resolve failed",
        extra={
            "status": resolution.status,
            "errorCode": resolution.error_code,
            "keys": sorted(resolution.attributes),
            "rejectedKeys": sorted(resolution.rejected),
        },
    )
    return ResolveAnswer(**resolution.answer())
