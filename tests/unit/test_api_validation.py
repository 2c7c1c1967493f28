"""AttributesApi request validation, by property: the real handler in-process with Genesys
and EventBridge replaced by recorders (hypothesis), and the committed OpenAPI document
checked against the handler running in the local sandbox (schemathesis)."""

from __future__ import annotations

import base64
import json
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
import schemathesis
from attribute_bridge import wiring
from attribute_bridge.budget import Budget
from attribute_bridge.config import Settings
from attribute_bridge.conversation_state import ParticipantRecord
from attribute_bridge.validation import AttributeLimits
from attribute_bridge.write_rules import KEY_PATTERN, NameList
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localdev.sandbox import LambdaContext, Sandbox, sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FILE = REPO_ROOT / "functions" / "attributes_api" / "app.py"
OPENAPI_FILE = REPO_ROOT / "docs" / "openapi.json"
CONVERSATION_ID = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
PARTICIPANT_ID = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"
ATTRIBUTES_RESOURCE = "/conversations/{conversationId}/participants/{participantId}/attributes"
SYNC_RESOURCE = "/conversations/{conversationId}/sync"
LIMITS = AttributeLimits()
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_loaded: dict[str, ModuleType] = {}


@dataclass
class GenesysRecorder:
    """Stands in for GenesysClient: every PATCH accepted and remembered."""

    patches: list[dict[str, Any]] = field(default_factory=list)

    def patch_attributes(
        self,
        conversation_id: str,
        participant_id: str,
        media_type: str,
        attributes: dict[str, str],
        budget: Budget,
    ) -> None:
        self.patches.append(
            {
                "conversation": conversation_id,
                "participant": participant_id,
                "attributes": attributes,
            }
        )

    def get_conversation(self, conversation_id: str, media_type: str, budget: Budget) -> Any:
        raise AssertionError("these tests never read a conversation")


@dataclass
class KnownCustomer:
    """Stands in for the ConversationState table: every participant was seen, a customer
    (so the write path needs no Genesys read); writes are remembered, nothing else."""

    writes: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def participant(self, conversation_id: str, participant_id: str) -> ParticipantRecord:
        return ParticipantRecord(purpose="customer", media_type="VOICE")

    def remember_participants(self, *args: Any) -> None:
        raise AssertionError("these tests never read a conversation")

    def record_writes(
        self, conversation_id: str, participant_id: str, keys: Any, at_ms: int
    ) -> None:
        self.writes.append((conversation_id, participant_id, sorted(keys)))


# Every key the documented pattern allows is writable here: these tests are about the
# API's contract (tests/unit/test_write_rules.py covers the allow-lists).
CONTRACT_SETTINGS = Settings(writable_attributes=NameList(prefixes=("",)))


@dataclass
class PublisherRecorder:
    published: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def publish(self, detail_type: str, details: list[dict[str, Any]]) -> None:
        self.published.append((detail_type, list(details)))


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    raw: str


@pytest.fixture
def api() -> ModuleType:
    """The handler module, imported once (after conftest set the Powertools environment)."""
    if "app" not in _loaded:
        spec = spec_from_file_location("attributes_api_under_test", APP_FILE)
        assert spec is not None and spec.loader is not None
        module = module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded["app"] = module
    return _loaded["app"]


def proxy_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str],
    body: str | None,
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, shaped like events/api-*.json."""
    path = resource
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    headers = {"Content-Type": "application/json"} if headers is None else headers
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/dev{path}",
            "stage": "dev",
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "203.0.113.10", "apiKeyId": "k1"},
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def invoke(api: ModuleType, event: dict[str, Any], **adapters: Any) -> Answer:
    adapters.setdefault("conversation_state", KnownCustomer())
    with wiring.override(settings=CONTRACT_SETTINGS, **adapters):
        result = api.lambda_handler(event, LambdaContext("AttributesApiFunction", 10, 256))
    raw = result["body"]
    return Answer(result["statusCode"], json.loads(raw), raw)


def patch(api: ModuleType, body: str | None, genesys: GenesysRecorder, **kwargs: Any) -> Answer:
    event = proxy_event(
        "PATCH",
        ATTRIBUTES_RESOURCE,
        {"conversationId": CONVERSATION_ID, "participantId": PARTICIPANT_ID},
        body,
        **kwargs,
    )
    return invoke(api, event, genesys=genesys)


def is_error_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"message", "errors"}
        and isinstance(body["message"], str)
        and isinstance(body["errors"], list)
        and len(body["errors"]) > 0
        and all(isinstance(line, str) for line in body["errors"])
    )


def within_contract(document: Any) -> bool:
    """What the PATCH body must be, written out independently of the handler."""
    if not isinstance(document, dict) or set(document) != {"attributes"}:
        return False
    attributes = document["attributes"]
    return (
        isinstance(attributes, dict)
        and 1 <= len(attributes) <= LIMITS.max_keys
        and all(
            KEY_PATTERN.fullmatch(key) is not None
            and isinstance(value, str)
            and "\x00" not in value
            and not any("\ud800" <= char <= "\udfff" for char in value)
            and len(value) <= LIMITS.max_value_length
            for key, value in attributes.items()
        )
    )


# ---------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Near the limits as well as well inside them: blank, empty, 256 and 257 characters.
attribute_names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "\t\n", "\u2003"]),
    st.text(min_size=LIMITS.max_key_length, max_size=LIMITS.max_key_length + 1),
)
attribute_values = st.one_of(
    st.text(max_size=12),
    st.text(min_size=LIMITS.max_value_length, max_size=LIMITS.max_value_length + 1),
    json_values,
)
attribute_maps = st.one_of(
    st.dictionaries(attribute_names, attribute_values, max_size=6),
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(str.strip), st.text(max_size=8), max_size=4
    ),
    # Around the count limit: 49-52 well-formed attributes.
    st.integers(LIMITS.max_keys - 1, LIMITS.max_keys + 2).map(
        lambda n: {f"key{i}": "value" for i in range(n)}
    ),
)
patch_documents = st.one_of(
    json_values,
    # An array around a good body is still not an object.
    st.lists(st.just({"attributes": {"tier": "gold"}}), min_size=1, max_size=2),
    st.builds(lambda attributes: {"attributes": attributes}, attribute_maps | json_values),
    st.builds(
        lambda attributes, extra: {"attributes": attributes, **extra},
        attribute_maps,
        st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=2),
    ),
)


# ---------------------------------------------------------------------------- PATCH bodies


@PROPERTY_SETTINGS
@given(document=patch_documents)
@example(document={"attributes": {"tier": "gold"}})
@example(document={"attributes": {"tier": 1}})
@example(document=[{"attributes": {"tier": "gold"}}])
def test_a_patch_body_is_written_exactly_when_it_is_a_string_map_within_limits(
    api: ModuleType, document: Any
) -> None:
    genesys = GenesysRecorder()

    answer = patch(api, json.dumps(document), genesys)

    if within_contract(document):
        assert answer.status == 200, answer.raw
        assert answer.body["attributes"] == document["attributes"]
        assert [p["attributes"] for p in genesys.patches] == [document["attributes"]]
    else:
        assert answer.status == 400, answer.raw
        assert is_error_body(answer.body)
        assert genesys.patches == []


@PROPERTY_SETTINGS
@given(body=st.text(max_size=60) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_patch_body_is_answered_200_or_400_never_5xx(
    api: ModuleType, body: str
) -> None:
    genesys = GenesysRecorder()

    answer = patch(api, body, genesys)

    assert answer.status in (200, 400), answer.raw
    if answer.status == 400:
        assert is_error_body(answer.body)
        assert genesys.patches == []
    else:
        assert within_contract(json.loads(body))


def is_genesys_id(value: object) -> bool:
    """8-4-4-4-12 hexadecimal digits with hyphens: how Genesys writes its ids."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    hyphens = (8, 13, 18, 23)
    return all(
        (char == "-") if index in hyphens else (char in string.hexdigits)
        for index, char in enumerate(value)
    )


ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda value: str(value).upper()),
    st.uuids().map(lambda value: value.hex),  # no hyphens: not how Genesys writes them
    st.text(min_size=1, max_size=40),
    st.sampled_from(["../../users/me", "x?y", "%2e%2e", "{participantId}", "a/b"]),
)


@PROPERTY_SETTINGS
@given(conversation_id=ids, participant_id=ids)
def test_ids_that_are_not_uuids_are_400_and_never_reach_genesys(
    api: ModuleType, conversation_id: str, participant_id: str
) -> None:
    genesys = GenesysRecorder()
    event = proxy_event(
        "PATCH",
        ATTRIBUTES_RESOURCE,
        {"conversationId": conversation_id, "participantId": participant_id},
        json.dumps({"attributes": {"a": "b"}}),
    )

    answer = invoke(api, event, genesys=genesys)

    if is_genesys_id(conversation_id) and is_genesys_id(participant_id):
        assert answer.status == 200, answer.raw
        [written] = genesys.patches
        assert written["conversation"] == conversation_id.lower()
        assert written["participant"] == participant_id.lower()
    else:
        assert answer.status == 400, answer.raw
        assert is_error_body(answer.body)
        assert genesys.patches == []


# ---------------------------------------------------------------------------- POST sync bodies

sync_documents = st.one_of(
    json_values,
    st.lists(st.none() | st.just({"participantId": PARTICIPANT_ID}), min_size=1, max_size=2),
    st.builds(
        lambda participant: {"participantId": participant},
        st.none() | st.uuids().map(str) | st.text(max_size=40) | json_scalars,
    ),
    st.builds(
        lambda extra: {"participantId": PARTICIPANT_ID, **extra},
        st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=2),
    ),
)


@PROPERTY_SETTINGS
@given(document=sync_documents)
@example(document=None)
@example(document={"participantId": PARTICIPANT_ID})
@example(document=[None])
def test_a_sync_is_requested_exactly_when_the_body_is_empty_or_names_a_participant_uuid(
    api: ModuleType, document: Any
) -> None:
    publisher = PublisherRecorder()
    event = proxy_event(
        "POST", SYNC_RESOURCE, {"conversationId": CONVERSATION_ID}, json.dumps(document)
    )

    answer = invoke(api, event, publisher=publisher)

    participant = document.get("participantId") if isinstance(document, dict) else None
    acceptable = document is None or (
        isinstance(document, dict)
        and set(document) <= {"participantId"}
        and (participant is None or is_genesys_id(participant))
    )
    if acceptable:
        assert answer.status == 202, answer.raw
        [(detail_type, [detail])] = publisher.published
        assert detail_type == "ParticipantAttributesSyncRequested"
        assert detail["conversationId"] == CONVERSATION_ID
        assert detail.get("participantId") == (participant.lower() if participant else None)
        assert detail["requestId"] == detail["correlationId"] == answer.body["requestId"]
    else:
        assert answer.status == 400, answer.raw
        assert is_error_body(answer.body)
        assert publisher.published == []


# ---------------------------------------------------------------------------- unreadable bodies


@pytest.mark.parametrize(
    ("headers", "body", "base64_encoded", "status"),
    [
        ({"Content-Type": "text/plain"}, '{"attributes": {"a": "b"}}', False, 415),
        ({"content-type": "application/xml"}, "<attributes/>", False, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, "--x--", False, 415),
        ({"Content-Type": "application/json"}, "%%%not base64", True, 400),
        ({"Content-Type": "application/json"}, base64.b64encode(b"\xff\xfe").decode(), True, 400),
        ({"Content-Type": "application/json"}, " " * (LIMITS.max_body_bytes + 1), False, 413),
        ({"Content-Type": "application/json"}, "[" * 40 + "]" * 40, False, 400),
        ({"Content-Type": "application/json"}, '{"a": ' * 40 + "1" + "}" * 40, False, 400),
    ],
)
def test_bodies_that_cannot_be_read_as_json_are_refused_before_routing(
    api: ModuleType, headers: dict[str, str], body: str, base64_encoded: bool, status: int
) -> None:
    genesys = GenesysRecorder()

    answer = patch(api, body, genesys, headers=headers, base64_encoded=base64_encoded)

    assert answer.status == status, answer.raw
    assert is_error_body(answer.body)
    assert genesys.patches == []


def test_a_base64_encoded_json_body_is_read(api: ModuleType) -> None:
    genesys = GenesysRecorder()
    body = base64.b64encode(json.dumps({"attributes": {"tier": "gold"}}).encode()).decode()

    answer = patch(
        api,
        body,
        genesys,
        headers={"Content-Type": "application/json; charset=utf-8"},
        base64_encoded=True,
    )

    assert answer.status == 200, answer.raw
    assert genesys.patches[0]["attributes"] == {"tier": "gold"}


# ---------------------------------------------------------------------------- OpenAPI


def test_the_committed_openapi_document_is_up_to_date(api: ModuleType) -> None:
    committed = OPENAPI_FILE.read_text(encoding="utf-8")
    # `make openapi` prints the document: tolerate the newline print() adds.
    assert committed.rstrip("\n") == api.openapi_json().rstrip("\n"), "run make openapi"


def test_the_openapi_document_is_deterministic_and_describes_both_auth_options(
    api: ModuleType,
) -> None:
    first, second = api.openapi_json(), api.openapi_json()
    document = json.loads(first)

    assert first == second and first.endswith("}\n")
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The API Gateway API key of the usage plan.",
    }
    assert document["components"]["securitySchemes"]["sigv4"]["name"] == "Authorization"
    assert document["security"] == [{"cognito": []}, {"apiKey": []}, {"sigv4": []}]  # one
    flows = document["components"]["securitySchemes"]["cognito"]["flows"]
    assert set(flows["clientCredentials"]["scopes"]) == {
        "attributes/read",
        "attributes/write",
        "attributes/sync",
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            for status in ("400", "403", "429", "500", "502"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ApiError"}
            assert "422" not in operation["responses"]


@dataclass
class SchemathesisRun:
    box: Sandbox
    statuses: dict[str, set[int]] = field(default_factory=dict)


def call_handler(run: SchemathesisRun, case: schemathesis.Case) -> schemathesis.Response:
    """Send a schemathesis case to the handler as API Gateway would: the prepared HTTP
    request becomes a REST proxy event, the handler's answer an HTTP response."""
    kwargs = case.as_transport_kwargs(base_url="https://abc123.execute-api.test/dev")
    request = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
    ).prepare()
    url = urlsplit(str(request.url))
    body, base64_encoded = request.body, False
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:  # API Gateway passes such a body base64-encoded
            body, base64_encoded = base64.b64encode(body).decode("ascii"), True
    event = proxy_event(
        str(request.method),
        case.operation.path,
        {name: str(value) for name, value in (case.path_parameters or {}).items()},
        body,
        headers=dict(request.headers),
        base64_encoded=base64_encoded,
    )
    event["path"] = unquote(url.path.removeprefix("/dev"))
    query = dict(parse_qsl(url.query))
    event["queryStringParameters"] = query or None
    result = run.box.invoke("AttributesApiFunction", event)
    response_headers: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        response_headers[name.lower()] = [str(value)]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        response_headers[name.lower()] = [str(v) for v in values]
    run.statuses.setdefault(case.operation.label, set()).add(result["statusCode"])
    return schemathesis.Response(
        status_code=result["statusCode"],
        headers=response_headers,
        content=str(result["body"] or "").encode("utf-8"),
        request=request,
        elapsed=0.0,
        verify=True,
    )


@pytest.fixture
def sandboxed() -> Iterator[Sandbox]:
    from attribute_bridge import aws as aws_adapters

    aws_adapters.aws_client.cache_clear()
    with sandbox() as box:
        yield box
    aws_adapters.aws_client.cache_clear()


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_the_handler_keeps_to_the_committed_openapi_document(
    sandboxed: Sandbox, mode: schemathesis.GenerationMode
) -> None:
    schema = schemathesis.openapi.from_path(str(OPENAPI_FILE))
    run = SchemathesisRun(sandboxed)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4  # + POST /resolve (data actions)

    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def keeps_to_the_document(case: schemathesis.Case) -> None:
            response = call_handler(run, case)
            case.validate_response(response, checks=checks)

        keeps_to_the_document()

    seen = set().union(*run.statuses.values())
    assert all(status < 500 for status in seen), run.statuses
    if mode is schemathesis.GenerationMode.NEGATIVE:
        assert 400 in seen, run.statuses  # the generated bad input was refused, not served
    else:
        assert {202, 404} <= seen, run.statuses  # syncs accepted; unknown conversations 404
