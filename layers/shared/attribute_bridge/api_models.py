"""The AttributesApi's contract: its bodies as pydantic models (the handler validates
requests and serializes answers with them; docs/openapi.json is built from them) and the
plain helpers around them. Limits a deployment may change (MAX_ATTRIBUTES,
MAX_ATTRIBUTE_VALUE_LENGTH) are checked at run time by `validation.validate_attributes`;
the schema shows the defaults."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from attribute_bridge.api_errors import Refusal
from attribute_bridge.validation import UUID_PATTERN, AttributeLimits
from attribute_bridge.write_rules import KEY_PATTERN

# UUID_PATTERN (validation.py: what `is_uuid` checks) is in the schema so clients see it,
# and in the routes so a bad id is refused before anything reaches Genesys.
DEFAULT_LIMITS = AttributeLimits()

ACCEPTED_STATUS: Literal["accepted"] = "accepted"
QUEUED_STATUS: Literal["queued"] = "queued"
SYNC_REQUESTED_STATUS: Literal["sync requested"] = "sync requested"

Uuid = Annotated[
    str, Field(pattern=UUID_PATTERN, examples=["6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"])
]
AttributeMap = dict[StrictStr, StrictStr]

_ATTRIBUTES_SCHEMA: dict[str, Any] = {
    # What the write rules enforce with the default limits (Genesys's documented ones: 50
    # attributes, values up to 256 characters) and their key pattern (write_rules.py).
    "maxProperties": DEFAULT_LIMITS.max_keys,
    "propertyNames": {"pattern": f"^{KEY_PATTERN.pattern}$"},
    "additionalProperties": {"type": "string", "maxLength": DEFAULT_LIMITS.max_value_length},
}


class _ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class AttributesUpdate(_ApiModel):
    """PATCH body: the attributes to set. Genesys merges them: keys not sent are kept."""

    attributes: AttributeMap = Field(
        min_length=1,
        description=(
            "Attribute name -> string value. Names: letters, digits, `_`, `.`, `-`, 1-128 "
            "characters, and on the stack's WritableAttributes list. Defaults: at most 50 "
            "attributes, values up to 256 characters, no NUL."
        ),
        json_schema_extra=_ATTRIBUTES_SCHEMA,
        examples=[{"crm_case_id": "CASE-2002", "crm_customer_tier": "gold"}],
    )


class SyncRequest(_ApiModel):
    """POST /sync body (optional): which participant; the customer when left out."""

    participant_id: Uuid | None = Field(
        default=None, description="The participant to sync; default: the customer participant."
    )


class ParticipantAttributes(_ApiModel):
    """A participant's attributes as Genesys Cloud holds them."""

    conversation_id: Uuid
    participant_id: Uuid
    attributes: AttributeMap


class AttributesWritten(_ApiModel):
    """The attributes this request wrote; Genesys kept the participant's other keys."""

    conversation_id: Uuid
    participant_id: Uuid
    attributes: AttributeMap
    status: Literal["accepted", "queued"]


class SyncAccepted(_ApiModel):
    """The sync was queued (fetch -> external system -> patch); `requestId` correlates it."""

    conversation_id: Uuid
    status: Literal["sync requested"]
    request_id: str


class ApiError(_ApiModel):
    """Every error this API answers, including the gateway's own (missing key, throttled)."""

    message: str = Field(examples=["The request is invalid"])
    errors: list[str] = Field(examples=[["body.attributes.score: Input should be a valid string"]])


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """Powertools/pydantic validation errors -> one readable line each, named by where
    they are (`body.attributes.score`, `conversationId`). The rejected input itself is not
    echoed back: it may be large."""
    lines: list[str] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        kind = str(error.get("type", ""))
        context = error.get("ctx") or {}
        # Path parameters are named on their own: that is how the caller knows them.
        where = (
            location[1] if location[:1] == ["path"] and len(location) == 2 else ".".join(location)
        )
        if kind == "json_invalid":
            lines.append(f"body is not valid JSON: {context.get('error', 'decode error')}")
        elif kind == "string_pattern_mismatch" and context.get("pattern") == UUID_PATTERN:
            lines.append(f"{where} must be a UUID")
        elif kind == "missing" and location == ["body"]:
            lines.append("body is required")
        elif kind in ("model_attributes_type", "dict_type", "model_type") and location == ["body"]:
            lines.append("body must be a JSON object")
        else:
            lines.append(f"{where or 'request'}: {error.get('msg', kind)}")
    return lines or ["the request is invalid"]


METHODS_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})
_JSON_WHITESPACE = " \t\n\r"


def unreadable_body(event: Mapping[str, Any], max_bytes: int) -> Refusal | None:
    """Why the body of a POST/PATCH proxy event cannot be one of this API's JSON objects,
    or None: another Content-Type (415; Powertools would parse forms and multipart), more
    than `max_bytes`, base64 / UTF-8 that does not decode, or a JSON array (400)."""
    body = event.get("body")
    if not body or str(event.get("httpMethod", "")).upper() not in METHODS_WITH_BODY:
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return Refusal(415, "The body must be JSON", ["Content-Type must be application/json"])
    try:
        raw = base64.b64decode(str(body), validate=True) if event.get("isBase64Encoded") else None
        text = raw.decode("utf-8") if raw is not None else str(body)
        size = len(raw) if raw is not None else len(text.encode("utf-8"))
    except (binascii.Error, UnicodeError):
        return Refusal(400, "The request is invalid", ["body is not valid UTF-8 JSON"])
    if size > max_bytes:
        return Refusal(413, "The body is too large", [f"body is larger than {max_bytes} bytes"])
    if text.lstrip(_JSON_WHITESPACE).startswith("["):
        # Powertools unwraps a list into its first item (meant for forms and query
        # strings): `[{"attributes": ...}]` would pass as an object. Refuse arrays here.
        return Refusal(400, "The request is invalid", ["body must be a JSON object"])
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _nesting_depth(text) > MAX_JSON_DEPTH:
        # json.loads would hit Python's recursion limit (a 500); no body of this API
        # nests deeper than 2.
        return Refusal(400, "The request is invalid", [f"body nests deeper than {MAX_JSON_DEPTH}"])
    return None


MAX_JSON_DEPTH = 32


def _nesting_depth(text: str) -> int:
    """The deepest nesting of `[` / `{` outside JSON strings (a linear scan, no parse)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def normalized_content_type(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """`Application/JSON; charset=utf-8` is JSON: media types are case-insensitive (RFC
    9110), and Powertools compares them as written."""
    headers = event.get("headers")
    if not isinstance(headers, Mapping):
        return event
    for name, value in headers.items():
        if str(name).lower() == "content-type" and isinstance(value, str):
            media_type, _, parameters = value.partition(";")
            normalized = media_type.strip().lower() + (f";{parameters}" if parameters else "")
            multi = dict(event.get("multiValueHeaders") or {})
            for multi_name in list(multi):
                if str(multi_name).lower() == "content-type":
                    multi[multi_name] = [normalized]
            return {
                **event,
                "headers": {**headers, name: normalized},
                "multiValueHeaders": multi or event.get("multiValueHeaders"),
            }
    return event


def route_by_resource(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with `path` rebuilt from the resource API Gateway matched and its path
    parameters, each percent-encoded. So an id such as `../../users/me` or `x?y` stays one
    path segment, reaches its route and is refused there as "not a UUID" (400), instead of
    missing every route; and a base path mapping or stage prefix in `path` is ignored."""
    resource, parameters = event.get("resource"), event.get("pathParameters")
    if not isinstance(resource, str) or not isinstance(parameters, Mapping):
        return event
    path = resource
    for name, value in parameters.items():
        path = path.replace("{" + str(name) + "}", quote(str(value), safe=""))
    if "{" in path:  # a parameter API Gateway did not fill: leave routing to `path`
        return event
    return {**event, "path": path}


def without_unused_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document minus the component schemas that no path uses, even indirectly."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    prefix = "#/components/schemas/"
    used: set[str] = set()
    pending: list[Any] = [document.get("paths", {})]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith(prefix):
                name = reference.removeprefix(prefix)
                if name in schemas and name not in used:
                    used.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for name in set(schemas) - used:
        del schemas[name]
    return document
