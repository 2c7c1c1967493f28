"""The AttributesApi's routes (functions/attributes_api/app.py hands every request here):
external systems and Genesys data actions read and write a live participant's attributes,
or ask for a sync, through API Gateway (API key checked there).

- GET   /conversations/{conversationId}/participants/{participantId}/attributes
- PATCH /conversations/{conversationId}/participants/{participantId}/attributes
- POST  /conversations/{conversationId}/sync
- POST  /conversations/{conversationId}/resolve (attribute_bridge.resolve_routes)

Every error is JSON `{"message", "errors"}`. A body must be JSON: any other Content-Type
is answered 415. The OpenAPI document is `openapi_json()` (docs/openapi.json).

API Gateway's GETs are answered by attribute_bridge.api_read instead, without this
module: it pulls pydantic, the API's models and Powertools' validating resolver, which a
read does not need and a cold container's first request would pay. The handler module
imports it on the first other request (at init when pre-warmed). Error answers for both
are attribute_bridge.api_errors'.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from attribute_bridge import api_errors, api_read, use_cases, wiring
from attribute_bridge.api_errors import Refusal, not_an_api_event
from attribute_bridge.api_models import (
    ACCEPTED_STATUS,
    QUEUED_STATUS,
    SYNC_REQUESTED_STATUS,
    ApiError,
    AttributesUpdate,
    AttributesWritten,
    ParticipantAttributes,
    SyncAccepted,
    SyncRequest,
    describe_validation_errors,
    normalized_content_type,
    route_by_resource,
    unreadable_body,
    without_unused_schemas,
)
from attribute_bridge.budget import Budget
from attribute_bridge.errors import (
    BridgeError,
    NotFound,
    PublishFailed,
)
from attribute_bridge.events import SYNC_REQUESTED, UPDATE_REQUESTED, AttributesDetail
from attribute_bridge.resolve_routes import router as resolve_router
from attribute_bridge.validation import UUID_PATTERN
from attribute_bridge.write_rules import NOT_WRITABLE, PURPOSE_NOT_WRITABLE, STALE

logger = Logger(child=True)
metrics = Metrics()  # Powertools shares one metric set: the handler module flushes it
app = APIGatewayRestResolver(enable_validation=True)
app.include_router(resolve_router)  # POST /conversations/{conversationId}/resolve

API_TITLE = "Genesys participant attributes API"
# template.yaml's resource server `attributes`: the scope each route needs with COGNITO
SCOPES = (
    ("attributes/read", "GET a participant's readable attributes"),
    ("attributes/write", "PATCH a participant's writable attributes"),
    ("attributes/sync", "POST /sync and POST /resolve"),
)
API_VERSION = "1.0.0"
ATTRIBUTES_PATH = "/conversations/<conversationId>/participants/<participantId>/attributes"
SYNC_PATH = "/conversations/<conversationId>/sync"
GENERIC_MEDIA = ""  # the media is unknown here: Genesys's generic conversation endpoints

ConversationId = Annotated[
    str,
    Path(
        alias="conversationId",
        title="conversationId",
        pattern=UUID_PATTERN,
        description="Conversation id.",
    ),
]
ParticipantId = Annotated[
    str,
    Path(
        alias="participantId",
        title="participantId",
        pattern=UUID_PATTERN,
        description="Participant id (conversation-scoped, not a user id).",
    ),
]

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: ids that are not UUIDs, invalid JSON, wrong types, extra fields, "
    "too many attributes or values too long.",
    403: "Missing or invalid credentials (answered by API Gateway), or refused by the write "
    "rules: a key not in WritableAttributes, or a participant whose purpose is not writable "
    "(nothing is written).",
    404: "Unknown conversation, participant or route.",
    409: "Genesys Cloud kept answering 409 Conflict; retry.",
    413: "The body is larger than the limit (512,000 bytes by default).",
    415: "The body is not JSON (Content-Type must be application/json).",
    429: "Rate limited, by Genesys Cloud (with Retry-After) or by the API's usage plan.",
    500: "Unexpected failure of this service.",
    502: "Genesys Cloud or AWS failed, refused this service's credentials, or refused the "
    "request; retry later.",
}


def _responses(
    status: int, model: type[Any], description: str, *error_statuses: int
) -> dict[int, OpenAPIResponse]:
    """The operation's answers for the OpenAPI document: its success and its errors."""
    documented: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for error_status in (400, 403, *error_statuses, 429, 500, 502):
        answer: OpenAPIResponse = {
            "description": ERROR_DESCRIPTIONS[error_status],
            "content": {"application/json": {"model": ApiError}},
        }
        if error_status == 429:
            answer["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying (when Genesys rate-limited).",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        documented[error_status] = answer
    return documented


# ---------------------------------------------------------------------------- routes


@app.get(
    ATTRIBUTES_PATH,
    summary="Read a participant's attributes",
    operation_id="getParticipantAttributes",
    tags=["attributes"],
    responses=_responses(200, ParticipantAttributes, "The participant's attributes.", 404, 409),
)
def get_attributes(
    conversation_id: ConversationId, participant_id: ParticipantId
) -> ParticipantAttributes:
    # API Gateway's GETs never get here (attribute_bridge.api_read answers them without
    # pydantic); events without a resource do, and the document describes this route.
    return ParticipantAttributes.model_validate(
        api_read.read_attributes(conversation_id, participant_id, _budget())
    )


@app.patch(
    ATTRIBUTES_PATH,
    summary="Set some of a participant's attributes (keys not sent are kept)",
    description=(
        "Only keys on the stack's WritableAttributes list, on a participant whose purpose "
        "is in WritablePurposes (default: customer); any other key refuses the whole "
        "request (403) and nothing is written. With `Prefer: respond-async` the write is "
        "queued (202) and applied by PatchAttributes with its retries; a queued write not "
        "applied within MaxWriteDelaySeconds is skipped as stale, never applied over newer "
        "values."
    ),
    operation_id="patchParticipantAttributes",
    tags=["attributes"],
    responses={
        **_responses(200, AttributesWritten, "Written; the attributes sent.", 404, 409, 413, 415),
        202: {
            "description": "Queued (`Prefer: respond-async`); PatchAttributes applies it.",
            "content": {"application/json": {"model": AttributesWritten}},
        },
    },
)
def patch_attributes(
    conversation_id: ConversationId,
    participant_id: ParticipantId,
    update: Annotated[AttributesUpdate, Body(description="The attributes to set.")],
) -> Response[Any]:
    request = AttributesDetail(
        conversation_id=conversation_id.lower(),
        participant_id=participant_id.lower(),
        media_type="UNKNOWN",  # the write path finds it (participant record or read)
        attributes=dict(update.attributes),
        correlation_id=_request_id(),
        source_event_id=_request_id(),
        read_at_ms=use_cases.now_in_ms(),  # a write "now": replaces whatever is there
    )
    settings, state = wiring.current_settings(), wiring.conversation_state()
    if _respond_async():
        refused = use_cases.precheck_write(request, state, settings)
        if refused is not None:
            return _refused(refused.refused)
        _publish(UPDATE_REQUESTED, request.to_dict())
        _count("ApiPatchQueued")
        return _answer(202, _written(request, QUEUED_STATUS))
    result = use_cases.patch_attributes(
        request, wiring.genesys(), state, settings, _budget(), all_or_nothing=True
    )
    if result.outcome == "not_found":
        raise NotFound(result.reason, status=404)
    if result.refused:
        return _refused(result.refused)
    _count("ApiPatched")
    return _answer(200, _written(request, ACCEPTED_STATUS))


def _refused(refused: dict[str, str]) -> Response[Any]:
    """Nothing was written: 403 for what the write rules forbid, 409 for a key changed
    meanwhile, 400 for keys or values that are not valid."""
    errors = [f"{key}: {why}" for key, why in sorted(refused.items())]
    reasons = set(refused.values())
    if all(why == NOT_WRITABLE or why.startswith(PURPOSE_NOT_WRITABLE) for why in reasons):
        return _error(403, "Refused", "Refused by the write rules; nothing was written", errors)
    if reasons == {STALE}:
        return _error(409, "Conflict", "Changed meanwhile; nothing was written", errors)
    return _error(400, "Rejected", "The request is invalid; nothing was written", errors)


def _written(request: AttributesDetail, status: str) -> AttributesWritten:
    return AttributesWritten.model_validate(
        {
            "conversationId": request.conversation_id,
            "participantId": request.participant_id,
            "attributes": request.attributes,
            "status": status,
        }
    )


def _respond_async() -> bool:
    prefer = app.current_event.headers.get("Prefer") or ""
    return "respond-async" in prefer.lower()


@app.post(
    SYNC_PATH,
    status_code=202,
    summary="Start a sync: fetch -> external system -> patch, asynchronously",
    operation_id="requestConversationSync",
    tags=["sync"],
    responses=_responses(202, SyncAccepted, "The sync is queued.", 415),
)
def request_sync(
    conversation_id: ConversationId,
    request: Annotated[SyncRequest | None, Body(description="Optional; may be empty.")] = None,
) -> SyncAccepted:
    conversation_id = conversation_id.lower()
    request_id = _request_id()
    detail = {"conversationId": conversation_id, "correlationId": request_id}
    if request is not None and request.participant_id is not None:
        detail["participantId"] = request.participant_id.lower()
    detail["requestId"] = request_id
    _publish(SYNC_REQUESTED, detail)
    _count("ApiSyncRequested")
    return SyncAccepted(
        conversation_id=conversation_id, status=SYNC_REQUESTED_STATUS, request_id=request_id
    )


# ---------------------------------------------------------------------------- errors

AnyErrorHandler = TypeVar("AnyErrorHandler", bound=Callable[..., Response[Any]])


def _answers(*kinds: type[Exception]) -> Callable[[AnyErrorHandler], AnyErrorHandler]:
    """`app.exception_handler`, typed (Powertools' own decorator is not)."""

    def register(handler: AnyErrorHandler) -> AnyErrorHandler:
        app.exception_handler(list(kinds))(handler)
        return handler

    return register


@_answers(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[Any]:
    return _error(
        400, "Rejected", "The request is invalid", describe_validation_errors(error.errors())
    )


@_answers(RequestUnsupportedContentType)
def _not_json(error: RequestUnsupportedContentType) -> Response[Any]:
    return _error(
        415, "Rejected", "The body must be JSON", ["Content-Type must be application/json"]
    )


@app.not_found
def _unknown_route(error: Exception) -> Response[Any]:
    event = app.current_event
    where = f"{event.http_method} {event.path}"[:200]
    return _error(404, "NotFound", "No such resource", [f"no route for {where}"])


@_answers(Exception)
def _failed(error: Exception) -> Response[Any]:
    """What a route raised (not found, rate limited, upstream failures...): answered from
    the table the plain read uses too (attribute_bridge.api_errors)."""
    answer = api_errors.answer_for(error, app.current_event.http_method)
    return Response(
        status_code=answer.status,
        content_type=content_types.APPLICATION_JSON,
        body=ApiError(message=answer.message, errors=answer.errors).model_dump(),
        headers=answer.headers,
    )


def _error(
    status: int,
    metric: str,
    message: str,
    errors: list[str],
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    _count(metric)
    if status < 500:
        logger.info("Request refused", extra={"status": status, "errors": errors})
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=ApiError(message=message, errors=errors).model_dump(),
        headers=headers,
    )


# ---------------------------------------------------------------------------- plumbing


def _budget() -> Budget:
    return Budget.from_context(app.lambda_context)


def _count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


def _request_id() -> str:
    request_context = app.current_event.get("requestContext") or {}
    return str(request_context.get("requestId") or app.lambda_context.aws_request_id)


def _answer(status: int, body: AttributesWritten) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(),
    )


def _publish(detail_type: str, detail: dict[str, Any]) -> None:
    try:
        wiring.publisher().publish(detail_type, [detail])
    except BridgeError:
        raise
    except Exception as error:
        # botocore's errors (throttled, access denied) are an upstream failure: 502.
        if type(error).__module__.startswith("botocore"):
            raise PublishFailed(f"PutEvents failed: {type(error).__name__}") from error
        raise


def _refuse(refusal: Refusal) -> dict[str, Any]:
    """A proxy response for a request refused before routing."""
    _count("Rejected")
    logger.info("Request refused", extra={"status": refusal.status, "errors": refusal.errors})
    body = ApiError(message=refusal.message, errors=refusal.errors)
    return {
        "statusCode": refusal.status,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One API Gateway proxy event: refused before routing, or routed."""
    refusal = not_an_api_event(event) or unreadable_body(
        event, wiring.current_settings().limits.max_body_bytes
    )
    if refusal is not None:
        return _refuse(refusal)
    return app.resolve(dict(normalized_content_type(route_by_resource(event))), context)


def openapi_json() -> str:
    """The OpenAPI document, byte-for-byte reproducible (docs/openapi.json; make openapi)."""
    # Only the document needs Powertools' OpenAPI models (~0.1 s to import): not a request.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, OAuth2

    document = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description=(
                "Read and write a live Genesys Cloud participant's attributes, or start a "
                "sync with the external system. Authenticate as the stack's ApiAuthorization "
                "says: a Cognito client-credentials access token with the route's scope "
                "(COGNITO, the default), an API key in the x-api-key header (API_KEY) or an "
                "AWS SigV4-signed request (AWS_IAM). Every error is JSON {message, errors}."
            ),
            security_schemes={
                "cognito": OAuth2.model_validate(
                    {
                        "type": "oauth2",
                        "description": (
                            "Client credentials of the consumer's app client in the stack's "
                            "user pool (output ApiTokenUrl); one scope per route."
                        ),
                        "flows": {
                            "clientCredentials": {
                                "tokenUrl": "https://YOUR-DOMAIN.auth.REGION.amazoncognito.com/oauth2/token",
                                "scopes": dict(SCOPES),
                            }
                        },
                    }
                ),
                "apiKey": APIKey.model_validate(
                    {
                        "type": "apiKey",
                        "name": "x-api-key",
                        "in": "header",
                        "description": "The API Gateway API key of the usage plan.",
                    }
                ),
                "sigv4": APIKey.model_validate(
                    {
                        "type": "apiKey",
                        "name": "Authorization",
                        "in": "header",
                        "description": (
                            "AWS Signature Version 4, when the stack is deployed with "
                            "ApiAuthorization=AWS_IAM; the caller needs execute-api:Invoke."
                        ),
                    }
                ),
            },
            security=[{"cognito": []}, {"apiKey": []}, {"sigv4": []}],  # one, as deployed
        )
    )
    # Powertools documents a 422 for every route; this API answers 400 instead.
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop(str(HTTPStatus.UNPROCESSABLE_ENTITY.value), None)
    return json.dumps(without_unused_schemas(document), indent=2, sort_keys=True) + "\n"
